#include "cli/explain.hpp"

#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

namespace backcheck::cli {
namespace {

using nlohmann::json;

// The words of `text` the speller reads as another word, as the normaliser would see them.
std::vector<std::pair<std::string, std::string>> Corrections(const dialog::Engine& engine, const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  const dialog::Speller* speller = engine.normaliser().speller();
  if (speller == nullptr) return out;
  std::istringstream words(text);
  for (std::string w; words >> w;) {
    std::string lower;
    for (char c : w) {
      if (c >= 'A' && c <= 'Z') lower.push_back(static_cast<char>(c - 'A' + 'a'));
      else if (c >= 'a' && c <= 'z') lower.push_back(c);
    }
    if (auto fixed = speller->Correct(lower)) out.emplace_back(lower, std::string(*fixed));
  }
  return out;
}

json Explanation(const dialog::Engine& engine, const std::string& text) {
  const std::string normalised = engine.normaliser().Normalise(text);
  dialog::DetectionTrace trace;
  const dialog::Detection detection = engine.detector().Detect(normalised, &trace);
  const auto& flags = engine.kb().red_flags.flags;
  auto span = [&](std::size_t b, std::size_t e) { return normalised.substr(b, e - b); };

  json j{{"text", text}, {"normalised", normalised}};
  json corrected = json::array();
  for (const auto& [from, to] : Corrections(engine, text)) corrected.push_back({{"from", from}, {"to", to}});
  j["corrected"] = std::move(corrected);
  json concepts = json::array();
  for (const auto& c : trace.concepts) {
    concepts.push_back({{"concept", c.id}, {"term", c.term}, {"term_index", c.term_index}, {"text", span(c.begin, c.end)},
                        {"begin", c.begin}, {"end", c.end}});
  }
  j["concepts"] = std::move(concepts);
  json idioms = json::array();
  for (const auto& d : trace.idioms) {
    idioms.push_back({{"idiom", d.idiom}, {"index", d.index}, {"text", span(d.begin, d.end)}});
  }
  j["idioms"] = std::move(idioms);
  json candidates = json::array();
  for (const auto& c : trace.candidates) {
    json x{{"flag", c.flag}, {"by", c.by}, {"text", span(c.begin, c.end)}, {"ask", c.ask}};
    if (c.pattern >= 0) x["pattern"] = c.pattern;
    if (c.rule >= 0) x["rule"] = c.rule;
    if (!c.dropped.empty()) {
      x["dropped"] = c.dropped;
    } else {
      x["context"] = dialog::AttributionName(c.attribution);
      if (!c.cue.empty()) x["cue"] = {{"text", c.cue}, {"list", c.cue_list}};
    }
    candidates.push_back(std::move(x));
  }
  j["candidates"] = std::move(candidates);
  json mentions = json::array();
  for (const auto& m : detection.mentions) {
    mentions.push_back({{"flag", flags[m.flag].id}, {"context", dialog::AttributionName(m.attribution)},
                        {"text", span(m.begin, m.end)}});
  }
  j["mentions"] = std::move(mentions);
  json possible = json::array();
  for (std::size_t f = 0; f < flags.size(); ++f) {
    if (detection.possible & (dialog::FlagMask{1} << f)) possible.push_back(flags[f].id);
  }
  j["possible_flags"] = std::move(possible);
  const dialog::Turn turn = engine.Respond(engine.Start(), text);
  j["reply"] = {{"intent", turn.reply.intent}, {"red_flags", turn.reply.red_flags},
                {"possible_flags", turn.reply.possible_flags}, {"urgency", knowledge::UrgencyName(turn.reply.urgency)}};
  return j;
}

void PrintText(const json& j, std::ostream& out) {
  out << "message:     " << j["text"].get<std::string>() << "\n";
  out << "normalised:  " << j["normalised"].get<std::string>() << "\n";
  for (const auto& c : j["corrected"]) {
    out << "corrected:   " << c["from"].get<std::string>() << " -> " << c["to"].get<std::string>() << "\n";
  }
  for (const auto& c : j["concepts"]) {
    out << "concept:     " << c["concept"].get<std::string>() << "  \"" << c["text"].get<std::string>()
        << "\"  (term \"" << c["term"].get<std::string>() << "\", bytes " << c["begin"] << "-" << c["end"] << ")\n";
  }
  for (const auto& d : j["idioms"]) {
    out << "idiom:       \"" << d["text"].get<std::string>() << "\"  (\"" << d["idiom"].get<std::string>()
        << "\": no concept inside it counts)\n";
  }
  for (const auto& c : j["candidates"]) {
    out << (c["ask"].get<bool>() ? "question?:   " : "mention?:    ") << c["flag"].get<std::string>() << " by "
        << c["by"].get<std::string>() << "  \"" << c["text"].get<std::string>() << "\"  -> ";
    if (c.contains("dropped")) {
      out << "dropped (" << c["dropped"].get<std::string>() << ")\n";
      continue;
    }
    out << c["context"].get<std::string>();
    if (c.contains("cue")) out << " (cue \"" << c["cue"]["text"].get<std::string>() << "\" from " << c["cue"]["list"].get<std::string>() << ")";
    out << "\n";
  }
  auto list = [](const json& a) {
    std::string s;
    for (const auto& x : a) s += (s.empty() ? "" : ", ") + x.get<std::string>();
    return s.empty() ? std::string("none") : s;
  };
  std::string flags;
  for (const auto& m : j["mentions"]) {
    flags += (flags.empty() ? "" : ", ") + m["flag"].get<std::string>() + " (" + m["context"].get<std::string>() + ")";
  }
  out << "flags:       " << (flags.empty() ? "none" : flags) << "\n";
  out << "possible:    " << list(j["possible_flags"]) << "\n";
  const json& r = j["reply"];
  out << "reply:       intent " << r["intent"].get<std::string>() << ", red_flags " << list(r["red_flags"])
      << ", possible_flags " << list(r["possible_flags"]) << ", urgency " << r["urgency"].get<std::string>()
      << "  (first message of a new conversation)\n";
}

}  // namespace

void Explain(const dialog::Engine& engine, const std::vector<std::string>& texts, bool as_json, std::ostream& out) {
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const json j = Explanation(engine, texts[i]);
    if (as_json) {
      out << j.dump() << "\n";
    } else {
      if (i > 0) out << "\n";
      PrintText(j, out);
    }
  }
}

}  // namespace backcheck::cli
