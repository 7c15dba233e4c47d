// The stored form of a conversation's state: the JSON of dialog::to_json(ConversationState) plus
// "v": 1 (the form's version; readers ignore keys they do not know, so a later version adds
// fields, and a reader that needs one checks "v"). Written field by field into a string, without
// building an nlohmann tree: it is written on every turn, read back only when a conversation is
// loaded (with nlohmann's from_json, which checks every field).
#pragma once

#include <string>

#include "dialog/conversation.hpp"

namespace backcheck::server {

inline constexpr int kStateFormVersion = 1;

// The stored form of `state`, built with the server's JSON writer (json_writer.hpp). Cannot
// throw but for allocation.
std::string StateJson(const dialog::ConversationState& state);
// ...appended to `out`.
void AppendStateJson(std::string& out, const dialog::ConversationState& state);

}  // namespace backcheck::server
