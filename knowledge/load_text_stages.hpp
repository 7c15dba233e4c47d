// Loading and validating the data of the normaliser's text stages: quantities.jsonc and
// emoji.jsonc (knowledge/text_stages.hpp). Like the rest of the loader, a bad file is refused
// with a KnowledgeError naming the file, the item and the problem, e.g.
//   quantities.jsonc: temperature: unit '°k': scale must be "c", "f" or "?"
//   emoji.jsonc: emoji group 'fever': '🤒' is also in group 'hurt'
#pragma once

#include <nlohmann/json.hpp>

#include "knowledge/text_stages.hpp"

namespace backcheck::knowledge {

QuantityTable LoadQuantities(const nlohmann::json& doc);
EmojiTable LoadEmoji(const nlohmann::json& doc);

}  // namespace backcheck::knowledge
