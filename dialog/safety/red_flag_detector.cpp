#include "dialog/safety/red_flag_detector.hpp"

#include "dialog/words.hpp"
#include "dialog/text/spelling.hpp"

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace backcheck::dialog {
namespace {

bool IsHardPunct(std::string_view tok) {
  return tok.size() == 1 && (tok[0] == '.' || tok[0] == '!' || tok[0] == '?' || tok[0] == ';' || tok[0] == ':');
}

RE2::Options PatternOptions() {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(64 << 20);
  return options;
}

// Order in which a flag's non-self mentions decide its attribution (see the header).
int Rank(Attribution a) {
  switch (a) {
    case Attribution::kSelf: return 0;
    case Attribution::kEffort: return 1;
    case Attribution::kPast: return 2;
    case Attribution::kOtherPerson: return 3;
    case Attribution::kHypothetical: return 4;
    case Attribution::kInformational: return 5;
    case Attribution::kNegated: return 6;
  }
  return 6;
}

}  // namespace

const char* AttributionName(Attribution a) {
  switch (a) {
    case Attribution::kSelf: return "self";
    case Attribution::kPast: return "past";
    case Attribution::kOtherPerson: return "other_person";
    case Attribution::kHypothetical: return "hypothetical";
    case Attribution::kInformational: return "informational";
    case Attribution::kNegated: return "negated";
    case Attribution::kEffort: return "effort";
  }
  return "self";
}

FlagMask Detection::Mask(Attribution a) const {
  FlagMask mask = 0;
  for (const auto& m : mentions) {
    if (m.attribution == a) mask |= FlagMask{1} << m.flag;
  }
  return mask;
}

void RedFlagDetector::AddCues(Cue list, const std::vector<std::string>& phrases) {
  for (const auto& phrase : phrases) {
    auto words = SplitWords(phrase);
    if (words.empty()) continue;
    CueEntry& entry = cues_[words.front()];
    entry.lists |= std::uint32_t{1} << list;
    auto& entries = entry.phrases[list];
    entries.push_back(std::move(words));
    std::sort(entries.begin(), entries.end(), [](const auto& x, const auto& y) { return x.size() > y.size(); });
  }
}

RedFlagDetector::RedFlagDetector(const knowledge::RedFlagLexicon& lexicon, std::int64_t set_max_mem,
                                 const Speller* speller)
    : lexicon_(&lexicon), concepts_(lexicon, speller), set_([&] {
        RE2::Options set_options = PatternOptions();
        set_options.set_max_mem(set_max_mem);
        return std::make_unique<RE2::Set>(set_options, RE2::UNANCHORED);
      }()) {
  const RE2::Options options = PatternOptions();
  for (std::size_t f = 0; f < lexicon.flags.size(); ++f) {
    const auto& flag = lexicon.flags[f];
    for (std::size_t i = 0; i < flag.patterns.size(); ++i) {
      std::string error;
      if (set_->Add(flag.patterns[i], &error) < 0) throw std::runtime_error("flag '" + flag.id + "': " + error);
      patterns_.push_back(std::make_unique<RE2>(flag.patterns[i], options));
      pattern_flag_.push_back(f);
      pattern_index_.push_back(static_cast<int>(i));
    }
    FlagPatterns fp;
    if (!flag.except.empty()) {
      std::string any;
      for (const auto& p : flag.except) any += (any.empty() ? "(?:" : "|(?:") + p + ")";
      fp.except = std::make_unique<RE2>(any, options);
    }
    for (const auto& p : flag.requires_) fp.requires_.push_back(std::make_unique<RE2>(p, options));
    flag_patterns_.push_back(std::move(fp));
    auto add_rules = [this, f](const std::vector<knowledge::ConceptRule>& rules, bool ask) {
      for (std::size_t r = 0; r < rules.size(); ++r) {
        const knowledge::ConceptRule& rule = rules[r];
        RuleMasks m;
        m.flag = static_cast<std::uint32_t>(f);
        m.rule = static_cast<std::uint32_t>(r);
        m.ask = ask;
        m.begin = static_cast<std::uint32_t>(rule_parts_.size());
        for (const auto& part : rule.parts) {
          ConceptSet set{};
          for (std::size_t c : part) set[c / 64] |= std::uint64_t{1} << (c % 64);
          rule_parts_.push_back(set);
        }
        m.end = static_cast<std::uint32_t>(rule_parts_.size());
        m.index = static_cast<std::uint32_t>(every_rule_.size());
        if (!rule.parts.empty()) {
          for (std::size_t c : rule.parts.front()) {
            if (rules_by_anchor_.size() <= c) rules_by_anchor_.resize(c + 1);
            rules_by_anchor_[c].push_back(m.index);
          }
        }
        every_rule_.push_back(m);
      }
    };
    add_rules(flag.rules, false);
    add_rules(flag.ask_when, true);
    const auto& effort = lexicon.cues.effort_flags;
    if (std::find(effort.begin(), effort.end(), flag.id) != effort.end()) effort_flags_ |= FlagMask{1} << f;
  }
  // A set that does not fit in its memory is not a reason to check nothing: every message is
  // then matched pattern by pattern (and counted), the same fallback as a DFA that runs out.
  // An empty set (every flag by rules) cannot be compiled and needs no matching.
  if (patterns_.empty() || !set_->Compile()) set_.reset();

  const auto& c = lexicon.cues;
  AddCues(kNegation, c.negation);
  AddCues(kPseudoNegation, c.pseudo_negation);
  AddCues(kClauseBreak, c.clause_breaks);
  AddCues(kSoftBreak, c.soft_breaks);
  AddCues(kSubjectStart, c.subject_starts);
  AddCues(kHypothetical, c.hypothetical);
  AddCues(kConcern, c.concern);
  AddCues(kDefinite, c.definite);
  AddCues(kQuestionStart, c.question_starts);
  AddCues(kInformational, c.informational);
  AddCues(kFirstPerson, c.first_person);
  AddCues(kThirdParty, c.third_party);
  AddCues(kPast, c.past);
  AddCues(kContinuing, c.continuing);
  AddCues(kPostNegation, c.post_negation);
  AddCues(kReportedSpeech, c.reported_speech);
  AddCues(kEffortActivity, c.effort_activity);
  AddCues(kEffortPassed, c.effort_passed);
  cue_table_.Build(cues_);
}

std::size_t RedFlagDetector::LongestPhraseAt(Cue list, std::string_view text, const std::vector<Token>& tokens,
                                             std::size_t t) const {
  auto word = [&](std::size_t i) { return text.substr(tokens[i].begin, tokens[i].end - tokens[i].begin); };
  for (const auto& phrase : tokens[t].cue->phrases[list]) {
    if (t + phrase.size() > tokens.size()) continue;
    bool all = true;
    for (std::size_t k = 1; k < phrase.size() && all; ++k) all = word(t + k) == phrase[k];
    if (all) return phrase.size();
  }
  return 0;
}

std::size_t RedFlagDetector::FindPhrase(Cue list, std::string_view text, const std::vector<Token>& tokens,
                                        std::size_t from, std::size_t to) const {
  for (std::size_t i = from; i < to; ++i) {
    std::size_t n = PhraseAt(list, text, tokens, i);
    if (n > 0 && i + n <= to) return i;
  }
  return to;
}

RedFlagDetector::Why RedFlagDetector::Attribute(std::string_view text, const std::vector<Token>& tokens,
                                                std::size_t first, std::size_t last,
                                                const std::vector<std::pair<std::size_t, std::size_t>>* others) const {
  auto in_others = [&](std::size_t i) {
    return others && std::any_of(others->begin(), others->end(), [&](const auto& r) {
             return i >= r.first && i <= r.second && !(r.first == first && r.second == last);
           });
  };
  auto word = [&](std::size_t i) { return text.substr(tokens[i].begin, tokens[i].end - tokens[i].begin); };
  auto why = [&](Attribution a, Cue list, std::size_t at) {
    return Why{a, at, std::max<std::size_t>(PhraseAt(list, text, tokens, at), 1), list};
  };
  // A soft break at i ends a clause only when a subject follows it ("..., it is just sore").
  auto soft_break_at = [&](std::size_t i) -> std::size_t {
    std::size_t n = PhraseAt(kSoftBreak, text, tokens, i);
    if (n == 0 && tokens[i].punct && (word(i) == "," || word(i) == "-")) n = 1;
    if (n == 0 || PhraseAt(kSubjectStart, text, tokens, i + n) == 0) return 0;
    return n;
  };

  // Sentence: between hard punctuation. Clause: also cut at clause breaks and soft breaks.
  std::size_t sentence_start = 0, clause_start = 0, hard_start = 0;
  bool hard_found = false, clause_found = false;
  for (std::size_t i = first; i-- > 0;) {
    if (IsHardPunct(word(i))) {
      sentence_start = i + 1;
      if (!hard_found) hard_start = i + 1;
      if (!clause_found) clause_start = i + 1;
      break;
    }
    if (std::size_t n = PhraseAt(kClauseBreak, text, tokens, i); n > 0 && i + n <= first) {
      if (!hard_found) hard_start = i + n, hard_found = true;
      if (!clause_found) clause_start = i + n, clause_found = true;
    } else if (std::size_t s = soft_break_at(i); s > 0 && i + s <= first && !clause_found) {
      clause_start = i + s;
      clause_found = true;
    }
  }
  std::size_t sentence_end = tokens.size(), clause_end = tokens.size();
  bool clause_end_found = false;
  for (std::size_t i = last + 1; i < tokens.size(); ++i) {
    if (IsHardPunct(word(i))) {
      sentence_end = i;
      if (!clause_end_found) clause_end = i;
      break;
    }
    if (!clause_end_found && (PhraseAt(kClauseBreak, text, tokens, i) > 0 || soft_break_at(i) > 0)) {
      clause_end = i;
      clause_end_found = true;
    }
  }

  // Negated: a negation cue close before the symptom, in its clause.
  const auto window = static_cast<std::size_t>(lexicon_->cues.negation_window);
  for (std::size_t i = clause_start; i < first;) {
    if (in_others(i)) {
      ++i;
      continue;
    }
    if (std::size_t n = PhraseAt(kPseudoNegation, text, tokens, i); n > 0) {
      i += n;
      continue;
    }
    std::size_t n = PhraseAt(kNegation, text, tokens, i);
    // A cue followed by punctuation is a whole answer ("none, tingling: yes") and reaches no further.
    const bool closed = n > 0 && i + n < first && tokens[i + n].punct;
    if (n > 0 && !closed && i + n <= first && first - (i + n) <= window) return why(Attribution::kNegated, kNegation, i);
    i += n > 0 ? n : 1;
  }

  // A short answer after it: "fever? no", "chest pain: none", "numbness - no".
  if (last + 1 < tokens.size() && tokens[last + 1].punct) {
    std::size_t i = last + 1;
    while (i < tokens.size() && tokens[i].punct) ++i;
    std::size_t n = PhraseAt(kPostNegation, text, tokens, i);
    if (n > 0 && (i + n == tokens.size() || tokens[i + n].punct)) return why(Attribution::kNegated, kPostNegation, i);
  }

  // Hypothetical: asked about, not had ("what if I get...", "should I worry about numbness").
  if (std::size_t at = FindPhrase(kHypothetical, text, tokens, hard_start, first); at < first) {
    return why(Attribution::kHypothetical, kHypothetical, at);
  }
  if (std::size_t at = FindPhrase(kReportedSpeech, text, tokens, clause_start, first); at < first) {
    return why(Attribution::kHypothetical, kReportedSpeech, at);
  }
  if (std::size_t at = FindPhrase(kConcern, text, tokens, hard_start, first);
      at < first && (first == 0 || PhraseAt(kDefinite, text, tokens, first - 1) == 0)) {
    return why(Attribution::kHypothetical, kConcern, at);
  }

  // Past: over, not now ("I had numbness last year", "gone now"), unless something outside the
  // past cues says it goes on ("still", "since yesterday", "again").
  // The past cue must be in the mention's clause ("i used to play football, and now there is
  // pressure in my chest" is current); a continuing cue anywhere in the sentence overrides it.
  // (A past phrase may run on past the clause: "all good since".)
  if (std::size_t at = FindPhrase(kPast, text, tokens, clause_start, sentence_end); at < clause_end) {
    // Words inside any past phrase ("fine now", "totally fine": overlapping ones too) do not
    // count as continuing.
    bool continuing = false;
    for (std::size_t i = sentence_start, past_until = sentence_start; i < sentence_end && !continuing; ++i) {
      past_until = std::max(past_until, i + PhraseAt(kPast, text, tokens, i));
      if (i < past_until) continue;
      const std::size_t n = PhraseAt(kContinuing, text, tokens, i);
      continuing = n > 0 && i + n <= sentence_end;
    }
    if (!continuing) return why(Attribution::kPast, kPast, at);
  }

  // Whose symptom: a person the mention itself names ("punched me in the back"), else the
  // nearest person before it in the clause, else the first one after it.
  for (std::size_t i = first; i <= last; ++i) {
    if (PhraseAt(kThirdParty, text, tokens, i) > 0) break;
    if (PhraseAt(kFirstPerson, text, tokens, i) > 0) return Why{};
  }
  for (std::size_t i = first; i-- > clause_start;) {
    if (PhraseAt(kThirdParty, text, tokens, i) > 0) return why(Attribution::kOtherPerson, kThirdParty, i);
    if (PhraseAt(kFirstPerson, text, tokens, i) > 0) return Why{};
  }
  for (std::size_t i = last + 1; i < clause_end; ++i) {
    if (PhraseAt(kThirdParty, text, tokens, i) > 0) return why(Attribution::kOtherPerson, kThirdParty, i);
    if (PhraseAt(kFirstPerson, text, tokens, i) > 0) return Why{};
  }

  // Informational: a question about the symptom that says nothing of the person themselves,
  // nor of an episode going on ("its been ten days and the pain is still bad, is that normal?").
  if (!AnyPhraseIn(kFirstPerson, text, tokens, sentence_start, sentence_end) &&
      !AnyPhraseIn(kContinuing, text, tokens, sentence_start, sentence_end)) {
    if (PhraseAt(kQuestionStart, text, tokens, sentence_start) > 0) {
      return why(Attribution::kInformational, kQuestionStart, sentence_start);
    }
    if (std::size_t at = FindPhrase(kInformational, text, tokens, sentence_start, sentence_end); at < sentence_end) {
      return why(Attribution::kInformational, kInformational, at);
    }
  }
  return Why{};
}

bool RedFlagDetector::IsQuestion(std::string_view text) const {
  if (text.find('?') != std::string_view::npos) return true;
  const std::string_view first = text.substr(0, text.find_first_of(" ,.!;:"));
  auto it = cues_.find(first);
  return it != cues_.end() && !it->second.phrases[kQuestionStart].empty();
}

bool RedFlagDetector::MatchPatterns(std::string_view text, std::vector<int>& hits) const {
  if (patterns_.empty()) return false;
  // The common case: no symptom words at all. Asking first without the list of hits lets RE2 stop
  // at the first match and allocate nothing (with a list it allocates a set per call).
  RE2::Set::ErrorInfo info{RE2::Set::kNoError};
  if (set_ && set_->Match(text, nullptr, &info)) {
    if (set_->Match(text, &hits, &info)) return true;
  } else if (set_ && info.kind == RE2::Set::kNoError) {
    return false;  // a real "no match"
  }
  // RE2::Set answered "no match" because its DFA failed (out of memory), not because nothing
  // matched (or the set could not be built within its memory at all). For the safety path that
  // would fail open: ask each pattern on its own instead (RE2 still runs in linear time), and
  // count it.
  set_fallbacks_.fetch_add(1, std::memory_order_relaxed);
  hits.clear();
  for (std::size_t i = 0; i < patterns_.size(); ++i) {
    if (RE2::PartialMatch(text, *patterns_[i])) hits.push_back(static_cast<int>(i));
  }
  return !hits.empty();
}

// One message as the later stages see it.
struct RedFlagDetector::Message {
  std::string_view text;
  std::vector<Token> tokens;
  std::vector<ConceptMention> concepts;
  std::vector<IdiomMention> idioms;
  std::vector<std::uint32_t> sentence, clause;  // per token: which sentence and clause it is in
  ConceptSet present{};                         // the concepts found anywhere in it
  std::vector<std::uint64_t> satisfied;         // per rule (every_rule_ index): all its concepts are in it

  void Reset(std::string_view message) {
    text = message;
    tokens.clear();
    concepts.clear();
    idioms.clear();
    sentence.clear();
    clause.clear();
    present = {};
    satisfied.clear();
  }
};

// A possible mention of a flag: by a pattern (one part) or a rule (one part per concept).
struct RedFlagDetector::Candidate {
  std::size_t flag = 0;
  std::size_t begin = 0, end = 0;  // bytes
  std::size_t first = 0, last = 0;  // tokens
  std::vector<std::pair<std::size_t, std::size_t>> parts;  // token ranges, each attributed
  int pattern = -1, rule = -1;
  bool ask = false;
  const char* dropped = nullptr;
  Why why;
};

void RedFlagDetector::PatternCandidates(const Message& m, const std::vector<int>& hits,
                                        std::vector<Candidate>& out) const {
  const std::string_view text = m.text;
  for (int h : hits) {
    const RE2& re = *patterns_[static_cast<std::size_t>(h)];
    std::size_t pos = 0;
    re2::StringPiece match;
    while (pos <= text.size() && re.Match(text, pos, text.size(), RE2::UNANCHORED, &match, 1)) {
      const auto b = static_cast<std::size_t>(match.data() - text.data());
      Candidate c;
      c.flag = pattern_flag_[static_cast<std::size_t>(h)];
      c.pattern = pattern_index_[static_cast<std::size_t>(h)];
      c.begin = b;
      c.end = b + match.size();
      while (c.first < m.tokens.size() && m.tokens[c.first].end <= c.begin) ++c.first;
      c.last = c.first;
      while (c.last + 1 < m.tokens.size() && m.tokens[c.last + 1].begin < c.end) ++c.last;
      if (c.first < m.tokens.size()) {
        c.parts.emplace_back(c.first, c.last);
        out.push_back(std::move(c));
      }
      pos = b + std::max<std::size_t>(match.size(), 1);
    }
  }
}

bool RedFlagDetector::Satisfies(const ConceptSet& present, const RuleMasks& rule) const {
  for (std::uint32_t p = rule.begin; p < rule.end; ++p) {
    if (((rule_parts_[p][0] & present[0]) | (rule_parts_[p][1] & present[1])) == 0) return false;
  }
  return true;
}

bool RedFlagDetector::SatisfiedRules(Message& m) const {
  m.satisfied.assign((every_rule_.size() + 63) / 64, 0);
  bool any = false;
  for (std::size_t w = 0; w < m.present.size(); ++w) {
    for (std::uint64_t bits = m.present[w]; bits != 0; bits &= bits - 1) {
      const std::size_t c = w * 64 + static_cast<std::size_t>(std::countr_zero(bits));
      if (c >= rules_by_anchor_.size()) break;
      for (std::uint32_t r : rules_by_anchor_[c]) {
        if (Satisfies(m.present, every_rule_[r])) {
          m.satisfied[r / 64] |= std::uint64_t{1} << (r % 64);
          any = true;
        }
      }
    }
  }
  return any;
}

void RedFlagDetector::RuleCandidates(const Message& m, std::vector<Candidate>& out, bool ask) const {
  const auto& flags = lexicon_->flags;
  // The satisfied rules in every_rule_ order, which is by flag, then rule: the order of the
  // candidates, which decides which of equal mentions is kept.
  for (std::size_t w = 0; w < m.satisfied.size(); ++w) {
    for (std::uint64_t bits = m.satisfied[w]; bits != 0; bits &= bits - 1) {
      const RuleMasks& satisfied = every_rule_[w * 64 + static_cast<std::size_t>(std::countr_zero(bits))];
      if (satisfied.ask != ask) continue;
      const std::size_t f = satisfied.flag, r = satisfied.rule;
      const knowledge::ConceptRule& rule = (ask ? flags[f].ask_when : flags[f].rules)[r];
      const auto& unit = rule.clause ? m.clause : m.sentence;
      auto in_part = [&](const ConceptMention& c, std::size_t p) {
        const auto& alts = rule.parts[p];
        return std::find(alts.begin(), alts.end(), c.id) != alts.end();
      };
      // Each mention of the first part anchors a scope; every other part must be found in it.
      std::uint32_t last_unit = 0xFFFFFFFF;
      for (const auto& anchor : m.concepts) {
        if (!in_part(anchor, 0) || unit[anchor.first] == last_unit) continue;
        const std::uint32_t u = unit[anchor.first];
        // The parts are gathered in scratch space first: most anchors find no full rule.
        thread_local std::vector<std::pair<std::size_t, std::size_t>> parts;
        parts.assign(1, {anchor.first, anchor.last});
        bool all = true;
        for (std::size_t p = 1; p < rule.parts.size() && all; ++p) {
          auto it = std::find_if(m.concepts.begin(), m.concepts.end(),
                                 [&](const ConceptMention& x) { return in_part(x, p) && unit[x.first] == u; });
          all = it != m.concepts.end();
          if (all) parts.emplace_back(it->first, it->last);
        }
        if (!all) continue;
        // What a rule excludes is looked for in the rule's own scope: a whole sentence would also
        // take "and i did not even train" as the exertion that explains the numbness.
        const bool excluded = std::any_of(m.concepts.begin(), m.concepts.end(), [&](const ConceptMention& x) {
          return unit[x.first] == u && std::find(rule.unless.begin(), rule.unless.end(), x.id) != rule.unless.end();
        });
        if (excluded) continue;
        last_unit = u;
        Candidate c;
        c.flag = f;
        c.rule = static_cast<int>(r);
        c.ask = ask;
        c.parts = parts;
        c.first = c.parts.front().first;
        c.last = c.parts.front().second;
        for (const auto& [a, b] : c.parts) c.first = std::min(c.first, a), c.last = std::max(c.last, b);
        c.begin = m.tokens[c.first].begin;
        c.end = m.tokens[c.last].end;
        out.push_back(std::move(c));
      }
    }
  }
}

// Drops what does not count: an overlapping `except` or idiom, a missing `requires`, and (not for
// questions) a mention inside a longer one of an equally or more urgent flag.
void RedFlagDetector::Filter(const Message& m, std::vector<Candidate>& candidates) const {
  const std::string_view text = m.text;
  auto sentence_of = [&](std::size_t at) {
    std::size_t b = text.find_last_of(".!?;", at == 0 ? 0 : at - 1);
    b = (b == std::string_view::npos || at == 0) ? 0 : b + 1;
    std::size_t e = text.find_first_of(".!?;", at);
    if (e == std::string_view::npos) e = text.size();
    return text.substr(b, e - b);
  };
  auto overlaps = [&](const RE2& re, const Candidate& s) {
    std::size_t pos = 0;
    re2::StringPiece match;
    while (pos <= text.size() && re.Match(text, pos, text.size(), RE2::UNANCHORED, &match, 1)) {
      auto b = static_cast<std::size_t>(match.data() - text.data());
      if (b < s.end && s.begin < b + match.size()) return true;
      pos = b + std::max<std::size_t>(match.size(), 1);
    }
    return false;
  };
  for (auto& c : candidates) {
    const auto& fp = flag_patterns_[c.flag];
    if (fp.except && overlaps(*fp.except, c)) {
      c.dropped = "except";
    } else if (std::any_of(m.idioms.begin(), m.idioms.end(),
                           [&](const IdiomMention& d) { return d.first <= c.last && c.first <= d.last; })) {
      c.dropped = "idiom";
    } else if (c.pattern >= 0 && !fp.requires_.empty()) {  // a rule names what it requires itself
      auto sentence = sentence_of(c.begin);
      if (std::none_of(fp.requires_.begin(), fp.requires_.end(),
                       [&](const auto& re) { return RE2::PartialMatch(sentence, *re); })) {
        c.dropped = "requires";
      }
    }
  }
  const auto& flags = lexicon_->flags;
  for (auto& s : candidates) {
    if (s.dropped || s.ask) continue;
    // A rule's mention takes its concepts as evidence, not as their own flags: it hides only what
    // is less urgent ("both legs numb" is cord_signs; "pins and needles down my arm" is both).
    bool inside = std::any_of(candidates.begin(), candidates.end(), [&](const Candidate& o) {
      const bool outranks = o.rule >= 0 ? flags[o.flag].level > flags[s.flag].level
                                        : flags[o.flag].level >= flags[s.flag].level;
      return !o.dropped && !o.ask && o.flag != s.flag && outranks && o.begin <= s.begin && s.end <= o.end &&
             (o.end - o.begin) > (s.end - s.begin);
    });
    if (inside) s.dropped = "inside a mention of a more urgent flag";
  }
}

// The candidate's attribution: the strongest context of its parts, then hard exercise that passed.
void RedFlagDetector::Decide(const Message& m, Candidate& c) const {
  for (const auto& [first, last] : c.parts) {
    Why w = Attribute(m.text, m.tokens, first, last, &c.parts);
    if (Rank(w.attribution) > Rank(c.why.attribution)) c.why = w;
  }
  // A pattern can span its own negation ("deep breath fine, no pain"): a negation cue just
  // before the pattern's last word, inside it, governs it.
  if (c.pattern >= 0 && c.why.attribution == Attribution::kSelf && c.last > c.first) {
    for (std::size_t i = c.last > c.first + 2 ? c.last - 2 : c.first + 1; i < c.last; ++i) {
      if (PhraseAt(kNegation, m.text, m.tokens, i) > 0 && PhraseAt(kPseudoNegation, m.text, m.tokens, i) == 0) {
        c.why = Why{Attribution::kNegated, i, PhraseAt(kNegation, m.text, m.tokens, i), kNegation};
        break;
      }
    }
  }
  if (c.why.attribution != Attribution::kSelf || !(effort_flags_ & (FlagMask{1} << c.flag))) return;
  std::size_t b = c.first, e = c.last + 1;
  while (b > 0 && m.sentence[b - 1] == m.sentence[c.first]) --b;
  while (e < m.tokens.size() && m.sentence[e] == m.sentence[c.first]) ++e;
  const std::size_t activity = FindPhrase(kEffortActivity, m.text, m.tokens, b, e);
  const std::size_t passed = FindPhrase(kEffortPassed, m.text, m.tokens, 0, m.tokens.size());
  if (activity < e && passed < m.tokens.size()) {
    c.why = Why{Attribution::kEffort, passed, PhraseAt(kEffortPassed, m.text, m.tokens, passed), kEffortPassed};
  }
}

namespace {

const char* CueListName(std::size_t list) {
  static constexpr const char* kNames[] = {
      "negation", "pseudo_negation", "clause_breaks", "soft_breaks", "subject_starts", "hypothetical", "concern",
      "definite", "question_starts", "informational", "first_person", "third_party", "past", "continuing",
      "post_negation", "reported_speech", "effort_activity", "effort_passed"};
  return list < std::size(kNames) ? kNames[list] : "";
}

}  // namespace

std::optional<std::vector<std::string>> RedFlagDetector::SetPatterns() const {
  std::vector<std::string> out;
  if (!set_ && !patterns_.empty()) return std::nullopt;
  for (const auto& re : patterns_) out.push_back(re->pattern());
  return out;
}

Detection RedFlagDetector::Detect(std::string_view text, DetectionTrace* trace) const {
  return DetectWith(text, nullptr, trace);
}

Detection RedFlagDetector::Detect(std::string_view text, const std::vector<int>& pattern_hits) const {
  return DetectWith(text, &pattern_hits, nullptr);
}

Detection RedFlagDetector::DetectWith(std::string_view text, const std::vector<int>* given,
                                      DetectionTrace* trace) const {
  Detection detection;
  // Scratch space kept per thread (cleared, capacity kept): this runs for every message, and
  // allocating its vectors anew was a tenth of its cost.
  struct Scratch {
    Message m;
    std::vector<TextToken> raw;
    std::vector<int> hits;
    std::vector<Candidate> candidates, asks;
  };
  thread_local Scratch scratch;
  auto& [m, raw, hits, candidates, asks] = scratch;
  m.Reset(text);
  Tokenise(text, raw);
  concepts_.Find(text, raw, m.concepts, &m.idioms);
  hits.clear();
  if (given) hits = *given;
  const bool patterns_hit = given ? !hits.empty() : MatchPatterns(text, hits);
  if (trace) {
    for (const auto& c : m.concepts) {
      const auto& cn = lexicon_->concepts[c.id];
      trace->concepts.push_back({cn.id, cn.terms[c.term], c.term, raw[c.first].begin, raw[c.last].end});
    }
    for (const auto& d : m.idioms) {
      trace->idioms.push_back({lexicon_->idioms[d.idiom], d.idiom, raw[d.first].begin, raw[d.last].end});
    }
  }
  for (const auto& c : m.concepts) m.present[c.id / 64] |= std::uint64_t{1} << (c.id % 64);
  if (!SatisfiedRules(m) && !patterns_hit) return detection;

  m.tokens.reserve(raw.size());
  for (const auto& t : raw) {
    const CueEntry* cue = cue_table_.Find(text.substr(t.begin, t.end - t.begin), t.hash);
    m.tokens.push_back(Token{t.begin, t.end, t.punct, cue ? cue->lists : 0, cue});
  }
  // Sentences end at hard punctuation; clauses also at clause breaks and at a soft break before a
  // subject (the same boundaries Attribute() scopes cues with).
  m.sentence.resize(m.tokens.size());
  m.clause.resize(m.tokens.size());
  std::uint32_t sentence = 0, clause = 0;
  for (std::size_t i = 0; i < m.tokens.size(); ++i) {
    const std::string_view w = text.substr(m.tokens[i].begin, m.tokens[i].end - m.tokens[i].begin);
    if (PhraseAt(kClauseBreak, text, m.tokens, i) > 0) ++clause;
    std::size_t soft = PhraseAt(kSoftBreak, text, m.tokens, i);
    if (soft == 0 && (w == "," || w == "-")) soft = 1;
    if (soft > 0 && PhraseAt(kSubjectStart, text, m.tokens, i + soft) > 0) ++clause;
    m.sentence[i] = sentence;
    m.clause[i] = clause;
    if (IsHardPunct(w)) ++sentence, ++clause;
  }

  // Rules first: a pattern's span can hide the negation a rule sees ("it stays in my back,
  // nothing shooting down my arm"), which then decides the pattern's mention too.
  candidates.clear();
  RuleCandidates(m, candidates, /*ask=*/false);
  if (patterns_hit) PatternCandidates(m, hits, candidates);
  // A rule often finds the span a pattern found: one of them is enough (the pattern's, first).
  if (!trace) {
    std::erase_if(candidates, [&, seen = std::vector<std::array<std::size_t, 3>>{}](const Candidate& c) mutable {
      const std::array<std::size_t, 3> key{c.flag, c.begin, c.end};
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) return true;
      seen.push_back(key);
      return false;
    });
  }
  Filter(m, candidates);
  FlagMask decided_self = 0;
  for (auto& c : candidates) {
    if (c.dropped) continue;
    // A self mention decides its flag: further mentions of it cannot change that.
    if (!trace && ((decided_self >> c.flag) & 1)) continue;
    Decide(m, c);
    if (c.pattern >= 0 && c.why.attribution == Attribution::kSelf) {
      for (const auto& r : candidates) {
        if (&r == &c || r.rule < 0 || r.flag != c.flag || r.dropped || r.why.attribution != Attribution::kNegated) continue;
        if (r.first > c.last || c.first > r.last) continue;
        // The rule saw a negation; one inside the pattern's span governs the pattern too.
        for (std::size_t i = c.first; i < c.last; ++i) {
          if (PhraseAt(kNegation, m.text, m.tokens, i) > 0 && PhraseAt(kPseudoNegation, m.text, m.tokens, i) == 0) {
            c.why = Why{Attribution::kNegated, i, PhraseAt(kNegation, m.text, m.tokens, i), kNegation};
            break;
          }
        }
        if (c.why.attribution != Attribution::kSelf) break;
      }
    }
    if (c.why.attribution == Attribution::kSelf) decided_self |= FlagMask{1} << c.flag;
    auto existing = std::find_if(detection.mentions.begin(), detection.mentions.end(),
                                 [&](const FlagMention& x) { return x.flag == c.flag; });
    if (existing == detection.mentions.end()) {
      detection.mentions.push_back(FlagMention{c.flag, c.why.attribution, c.begin, c.end});
    } else if (Rank(c.why.attribution) < Rank(existing->attribution)) {
      *existing = FlagMention{c.flag, c.why.attribution, c.begin, c.end};
    }
  }
  std::sort(detection.mentions.begin(), detection.mentions.end(),
            [](const FlagMention& a, const FlagMention& b) { return a.flag < b.flag; });

  // The safety net: partial evidence, for the person, now, for a flag nothing here mentions.
  FlagMask mentioned = 0;
  for (const auto& x : detection.mentions) mentioned |= FlagMask{1} << x.flag;
  asks.clear();
  RuleCandidates(m, asks, /*ask=*/true);
  std::erase_if(asks, [&](const Candidate& c) { return (mentioned >> c.flag) & 1; });
  Filter(m, asks);
  for (auto& c : asks) {
    if (c.dropped) continue;
    Decide(m, c);
    if (c.why.attribution == Attribution::kSelf) detection.possible |= FlagMask{1} << c.flag;
  }

  if (trace) {
    for (const auto* list : {&candidates, &asks}) {
      for (const auto& c : *list) {
        const auto& flag = lexicon_->flags[c.flag];
        DetectionTrace::Candidate t;
        t.flag = flag.id;
        t.pattern = c.pattern;
        t.rule = c.rule;
        t.ask = c.ask;
        t.by = c.pattern >= 0 ? "pattern " + std::to_string(c.pattern + 1)
                              : std::string(c.ask ? "ask " : "rule ") +
                                    (c.ask ? flag.ask_when : flag.rules)[static_cast<std::size_t>(c.rule)].source;
        t.begin = c.begin;
        t.end = c.end;
        t.dropped = c.dropped ? c.dropped : "";
        t.attribution = c.why.attribution;
        if (c.why.list != kCueCount && c.why.cue < m.tokens.size()) {
          const std::size_t e = std::min(c.why.cue + c.why.cue_length, m.tokens.size()) - 1;
          t.cue = std::string(text.substr(m.tokens[c.why.cue].begin, m.tokens[e].end - m.tokens[c.why.cue].begin));
          t.cue_list = CueListName(c.why.list);
        }
        trace->candidates.push_back(std::move(t));
      }
    }
  }
  return detection;
}

}  // namespace backcheck::dialog
