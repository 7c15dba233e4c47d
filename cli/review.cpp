#include "cli/review.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

namespace backcheck::cli {
namespace {

std::vector<std::string> SortedUnique(std::vector<std::string> words) {
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  return words;
}

std::string Utc(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%d %H:%M", &tm);
  return out;
}

std::string Iso(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

// The examples a group shows: its first members with different texts, at most `n`.
std::vector<std::string> Examples(const std::vector<server::ReviewEntry>& entries, const ReviewGroup& g,
                                  std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t m : g.members) {
    if (out.size() == n) break;
    if (std::find(out.begin(), out.end(), entries[m].text) == out.end()) out.push_back(entries[m].text);
  }
  return out;
}

std::string Clip(std::string text, std::size_t chars) {
  if (text.size() > chars) {
    text.resize(chars - 3);
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) text.pop_back();  // whole code points
    if (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xC0) text.pop_back();
    text += "...";
  }
  return text;
}

}  // namespace

double Jaccard(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.empty() && b.empty()) return 1;
  std::size_t shared = 0;
  for (auto i = a.begin(), j = b.begin(); i != a.end() && j != b.end();) {
    if (*i < *j) {
      ++i;
    } else if (*j < *i) {
      ++j;
    } else {
      ++shared, ++i, ++j;
    }
  }
  return static_cast<double>(shared) / static_cast<double>(a.size() + b.size() - shared);
}

std::vector<ReviewGroup> GroupReview(const std::vector<server::ReviewEntry>& entries,
                                     const std::function<std::vector<std::string>(std::string_view)>& words,
                                     double threshold) {
  std::vector<ReviewGroup> groups;
  std::vector<std::vector<std::string>> sets;  // of each entry
  std::vector<std::size_t> group_of;           // of each entry
  for (std::size_t i = 0; i < entries.size(); ++i) {
    sets.push_back(SortedUnique(words(entries[i].text)));
    double best = -1;
    std::size_t best_group = 0;
    for (std::size_t j = 0; j < i; ++j) {
      const double similarity = Jaccard(sets[i], sets[j]);
      if (similarity > best) {
        best = similarity;
        best_group = group_of[j];
      }
    }
    if (best >= threshold) {
      ReviewGroup& g = groups[best_group];
      g.members.push_back(i);
      g.first_ms = std::min(g.first_ms, entries[i].at_ms);
      g.last_ms = std::max(g.last_ms, entries[i].at_ms);
      group_of.push_back(best_group);
    } else {
      groups.push_back(ReviewGroup{{i}, entries[i].at_ms, entries[i].at_ms, sets[i]});
      group_of.push_back(groups.size() - 1);
    }
  }
  std::stable_sort(groups.begin(), groups.end(), [](const ReviewGroup& a, const ReviewGroup& b) {
    if (a.members.size() != b.members.size()) return a.members.size() > b.members.size();
    return a.last_ms > b.last_ms;
  });
  return groups;
}

std::vector<std::string> ReviewWords(const dialog::Engine& engine, const knowledge::PassageIndex& index,
                                     std::string_view text) {
  const std::string normalised = engine.normaliser().Normalise(text);
  std::vector<std::string> words = index.Terms(normalised);
  if (!words.empty()) return words;
  std::string word;
  for (char c : normalised + " ") {
    if (std::isalnum(static_cast<unsigned char>(c)) || (static_cast<unsigned char>(c) & 0x80)) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  return words;
}

std::optional<Suggestion> SuggestIntent(const dialog::Engine& engine, const knowledge::PassageIndex& index,
                                        const server::ReviewEntry& entry) {
  const auto& kb = engine.kb();
  dialog::ConversationState state = engine.Start();
  if (kb.flow.FindState(entry.state)) state.state = entry.state;
  const dialog::Turn turn = engine.Respond(state, entry.text);
  if (!turn.fell_back && !turn.retrieval_score && turn.reply.escalated == false) {
    return Suggestion{turn.reply.intent, "match", 0};
  }
  const auto hit = index.Best(engine.normaliser().Normalise(entry.text));
  if (!hit || hit->score < kb.language.retrieval_min_score / 2) return std::nullopt;
  const auto intent = engine.interpreter().IntentOfSentence(hit->sentence);
  if (!intent) return std::nullopt;
  const auto& i = kb.intents[*intent];
  return Suggestion{i.reported_as.empty() ? i.id : i.reported_as, "retrieval", hit->score};
}

int PrintReview(const dialog::Engine& engine, const std::vector<server::ReviewEntry>& entries, bool json,
                double threshold, std::ostream& out) {
  const auto& kb = engine.kb();
  const knowledge::PassageIndex index(kb.article, kb.language.stopwords);
  const auto groups =
      GroupReview(entries, [&](std::string_view text) { return ReviewWords(engine, index, text); }, threshold);
  if (json) {
    nlohmann::json doc{{"messages", entries.size()}, {"groups", nlohmann::json::array()}};
    for (const auto& g : groups) {
      std::map<std::string, int> intents, states;
      for (std::size_t m : g.members) {
        ++intents[entries[m].intent];
        ++states[entries[m].state];
      }
      nlohmann::json j{{"count", g.members.size()},
                       {"examples", Examples(entries, g, 3)},
                       {"first", Iso(g.first_ms)},
                       {"last", Iso(g.last_ms)},
                       {"first_ms", g.first_ms},
                       {"last_ms", g.last_ms},
                       {"words", g.words},
                       {"intents", intents},
                       {"states", states},
                       {"suggested", nullptr}};
      if (auto s = SuggestIntent(engine, index, entries[g.members.front()])) {
        j["suggested"] = {{"intent", s->intent}, {"by", s->by}, {"score", s->score}};
      }
      doc["groups"].push_back(std::move(j));
    }
    out << doc.dump(2) << "\n";
    return 0;
  }
  if (entries.empty()) {
    out << "nothing to review (is chat-server running with --review?)\n";
    return 0;
  }
  out << entries.size() << " message" << (entries.size() == 1 ? "" : "s") << " in " << groups.size() << " group"
      << (groups.size() == 1 ? "" : "s") << ", most frequent first (times UTC)\n\n";
  char line[256];
  std::snprintf(line, sizeof line, "%5s  %-16s  %-16s  %-28s  %s\n", "COUNT", "FIRST", "LAST", "SUGGESTED INTENT",
                "EXAMPLES");
  out << line;
  for (const auto& g : groups) {
    std::string suggested = "-";
    if (auto s = SuggestIntent(engine, index, entries[g.members.front()])) {
      char score[32];
      std::snprintf(score, sizeof score, " (%.2f)", s->score);
      suggested = s->intent + (s->by == "match" ? " (matches)" : score);
    }
    std::string examples;
    for (const auto& e : Examples(entries, g, 2)) examples += (examples.empty() ? "\"" : " | \"") + Clip(e, 60) + "\"";
    std::snprintf(line, sizeof line, "%5zu  %-16s  %-16s  %-28s  ", g.members.size(), Utc(g.first_ms).c_str(),
                  Utc(g.last_ms).c_str(), suggested.c_str());
    out << line << examples << "\n";
  }
  return 0;
}

std::optional<std::int64_t> ParseReviewDate(std::string_view text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char tail = 0;
  const std::string t(text);
  int n = std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &tail);
  if (n != 6 && !(n == 7 && tail == 'Z')) {
    h = mi = s = 0;
    n = std::sscanf(t.c_str(), "%4d-%2d-%2d%c", &y, &mo, &d, &tail);
    if (n != 3) return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

}  // namespace backcheck::cli
