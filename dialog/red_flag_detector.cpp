#include "dialog/red_flag_detector.hpp"

#include "dialog/words.hpp"

#include <algorithm>
#include <stdexcept>

namespace backcheck::dialog {
namespace {

bool IsPunct(char c) {
  return c == '.' || c == ',' || c == ';' || c == ':' || c == '!' || c == '?' || c == '-';
}
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
    case Attribution::kPast: return 1;
    case Attribution::kOtherPerson: return 2;
    case Attribution::kHypothetical: return 3;
    case Attribution::kInformational: return 4;
    case Attribution::kNegated: return 5;
  }
  return 5;
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
    auto& entries = cues_[words.front()].phrases[list];
    entries.push_back(std::move(words));
    std::sort(entries.begin(), entries.end(), [](const auto& x, const auto& y) { return x.size() > y.size(); });
  }
}

RedFlagDetector::RedFlagDetector(const knowledge::RedFlagLexicon& lexicon, std::int64_t set_max_mem)
    : lexicon_(&lexicon), set_([&] {
        RE2::Options set_options = PatternOptions();
        set_options.set_max_mem(set_max_mem);
        return std::make_unique<RE2::Set>(set_options, RE2::UNANCHORED);
      }()) {
  const RE2::Options options = PatternOptions();
  for (std::size_t f = 0; f < lexicon.flags.size(); ++f) {
    const auto& flag = lexicon.flags[f];
    for (const auto& p : flag.patterns) {
      std::string error;
      if (set_->Add(p, &error) < 0) throw std::runtime_error("flag '" + flag.id + "': " + error);
      patterns_.push_back(std::make_unique<RE2>(p, options));
      pattern_flag_.push_back(f);
    }
    FlagPatterns fp;
    if (!flag.except.empty()) {
      std::string any;
      for (const auto& p : flag.except) any += (any.empty() ? "(?:" : "|(?:") + p + ")";
      fp.except = std::make_unique<RE2>(any, options);
    }
    for (const auto& p : flag.requires_) fp.requires_.push_back(std::make_unique<RE2>(p, options));
    flag_patterns_.push_back(std::move(fp));
  }
  // A set that does not fit in its memory is not a reason to check nothing: every message is
  // then matched pattern by pattern (and counted), the same fallback as a DFA that runs out.
  if (!set_->Compile()) set_.reset();

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
}

std::size_t RedFlagDetector::PhraseAt(Cue list, std::string_view text, const std::vector<Token>& tokens,
                                      std::size_t t) const {
  if (t >= tokens.size() || tokens[t].cue == nullptr) return 0;
  auto word = [&](std::size_t i) { return text.substr(tokens[i].begin, tokens[i].end - tokens[i].begin); };
  for (const auto& phrase : tokens[t].cue->phrases[list]) {
    if (t + phrase.size() > tokens.size()) continue;
    bool all = true;
    for (std::size_t k = 1; k < phrase.size() && all; ++k) all = word(t + k) == phrase[k];
    if (all) return phrase.size();
  }
  return 0;
}

bool RedFlagDetector::AnyPhraseIn(Cue list, std::string_view text,
                                  const std::vector<Token>& tokens, std::size_t from,
                                  std::size_t to) const {
  for (std::size_t i = from; i < to; ++i) {
    std::size_t n = PhraseAt(list, text, tokens, i);
    if (n > 0 && i + n <= to) return true;
  }
  return false;
}

Attribution RedFlagDetector::Attribute(std::string_view text, const std::vector<Token>& tokens,
                                       std::size_t first, std::size_t last) const {
  auto word = [&](std::size_t i) { return text.substr(tokens[i].begin, tokens[i].end - tokens[i].begin); };
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
    if (std::size_t n = PhraseAt(kPseudoNegation, text, tokens, i); n > 0) {
      i += n;
      continue;
    }
    std::size_t n = PhraseAt(kNegation, text, tokens, i);
    // A cue followed by punctuation is a whole answer ("none, tingling: yes") and reaches no further.
    const bool closed = n > 0 && i + n < first && tokens[i + n].punct;
    if (n > 0 && !closed && i + n <= first && first - (i + n) <= window) return Attribution::kNegated;
    i += n > 0 ? n : 1;
  }

  // A short answer after it: "fever? no", "chest pain: none", "numbness - no".
  if (last + 1 < tokens.size() && tokens[last + 1].punct) {
    std::size_t i = last + 1;
    while (i < tokens.size() && tokens[i].punct) ++i;
    std::size_t n = PhraseAt(kPostNegation, text, tokens, i);
    if (n > 0 && (i + n == tokens.size() || tokens[i + n].punct)) return Attribution::kNegated;
  }

  // Hypothetical: asked about, not had ("what if I get...", "should I worry about numbness").
  if (AnyPhraseIn(kHypothetical, text, tokens, hard_start, first)) return Attribution::kHypothetical;
  if (AnyPhraseIn(kReportedSpeech, text, tokens, clause_start, first)) return Attribution::kHypothetical;
  if (AnyPhraseIn(kConcern, text, tokens, hard_start, first) &&
      (first == 0 || PhraseAt(kDefinite, text, tokens, first - 1) == 0)) {
    return Attribution::kHypothetical;
  }

  // Past: over, not now ("I had numbness last year"), unless something says it goes on.
  if (AnyPhraseIn(kPast, text, tokens, sentence_start, sentence_end) &&
      !AnyPhraseIn(kContinuing, text, tokens, sentence_start, sentence_end)) {
    return Attribution::kPast;
  }

  // Whose symptom: a person the mention itself names ("punched me in the back"), else the
  // nearest person before it in the clause, else the first one after it.
  for (std::size_t i = first; i <= last; ++i) {
    if (PhraseAt(kThirdParty, text, tokens, i) > 0) break;
    if (PhraseAt(kFirstPerson, text, tokens, i) > 0) return Attribution::kSelf;
  }
  for (std::size_t i = first; i-- > clause_start;) {
    if (PhraseAt(kThirdParty, text, tokens, i) > 0) return Attribution::kOtherPerson;
    if (PhraseAt(kFirstPerson, text, tokens, i) > 0) return Attribution::kSelf;
  }
  for (std::size_t i = last + 1; i < clause_end; ++i) {
    if (PhraseAt(kThirdParty, text, tokens, i) > 0) return Attribution::kOtherPerson;
    if (PhraseAt(kFirstPerson, text, tokens, i) > 0) return Attribution::kSelf;
  }

  // Informational: a question about the symptom that says nothing of the person themselves.
  if (!AnyPhraseIn(kFirstPerson, text, tokens, sentence_start, sentence_end) &&
      (PhraseAt(kQuestionStart, text, tokens, sentence_start) > 0 ||
       AnyPhraseIn(kInformational, text, tokens, sentence_start, sentence_end))) {
    return Attribution::kInformational;
  }
  return Attribution::kSelf;
}

bool RedFlagDetector::IsQuestion(std::string_view text) const {
  if (text.find('?') != std::string_view::npos) return true;
  const std::string_view first = text.substr(0, text.find_first_of(" ,.!;:"));
  auto it = cues_.find(first);
  return it != cues_.end() && !it->second.phrases[kQuestionStart].empty();
}

bool RedFlagDetector::MatchPatterns(std::string_view text, std::vector<int>& hits) const {
  // The common case: no symptom words at all. Asking first without the list of hits lets RE2 stop
  // at the first match and allocate nothing (with a list it allocates a set per call).
  RE2::Set::ErrorInfo info{RE2::Set::kNoError};
  if (set_ && set_->Match(text, nullptr, &info)) {
    if (set_->Match(text, &hits, &info)) return true;
  } else if (set_ && info.kind == RE2::Set::kNoError) {
    return false;  // a real "no match"
  }
  // RE2::Set answered "no match" because its DFA failed (out of memory), not because nothing
  // matched (or the set could not be built within its memory at all). For the safety path that would fail open: ask each pattern on its own instead
  // (RE2 still runs in linear time), and count it.
  set_fallbacks_.fetch_add(1, std::memory_order_relaxed);
  hits.clear();
  for (std::size_t i = 0; i < patterns_.size(); ++i) {
    if (RE2::PartialMatch(text, *patterns_[i])) hits.push_back(static_cast<int>(i));
  }
  return !hits.empty();
}

Detection RedFlagDetector::Detect(std::string_view text) const {
  Detection detection;
  std::vector<int> hits;
  if (!MatchPatterns(text, hits)) return detection;

  struct Span {
    std::size_t flag, begin, end;
  };
  std::vector<Span> spans;
  for (int h : hits) {
    const RE2& re = *patterns_[static_cast<std::size_t>(h)];
    std::size_t pos = 0;
    re2::StringPiece m;
    while (pos <= text.size() && re.Match(text, pos, text.size(), RE2::UNANCHORED, &m, 1)) {
      auto b = static_cast<std::size_t>(m.data() - text.data());
      spans.push_back(Span{pattern_flag_[static_cast<std::size_t>(h)], b, b + m.size()});
      pos = b + std::max<std::size_t>(m.size(), 1);
    }
  }

  // Sentence around a byte offset, for `requires` patterns.
  auto sentence_of = [&](std::size_t at) {
    std::size_t b = text.find_last_of(".!?;", at == 0 ? 0 : at - 1);
    b = (b == std::string_view::npos || at == 0) ? 0 : b + 1;
    std::size_t e = text.find_first_of(".!?;", at);
    if (e == std::string_view::npos) e = text.size();
    return text.substr(b, e - b);
  };
  auto overlaps = [&](const RE2& re, const Span& s) {
    std::size_t pos = 0;
    re2::StringPiece m;
    while (pos <= text.size() && re.Match(text, pos, text.size(), RE2::UNANCHORED, &m, 1)) {
      auto b = static_cast<std::size_t>(m.data() - text.data());
      if (b < s.end && s.begin < b + m.size()) return true;
      pos = b + std::max<std::size_t>(m.size(), 1);
    }
    return false;
  };
  std::erase_if(spans, [&](const Span& s) {
    const auto& fp = flag_patterns_[s.flag];
    if (fp.except && overlaps(*fp.except, s)) return true;
    if (fp.requires_.empty()) return false;
    auto sentence = sentence_of(s.begin);
    return std::none_of(fp.requires_.begin(), fp.requires_.end(),
                        [&](const auto& re) { return RE2::PartialMatch(sentence, *re); });
  });
  // A mention inside a longer mention of an equally or more urgent flag belongs to that flag.
  const auto& flags = lexicon_->flags;
  std::vector<Span> kept;
  for (const auto& s : spans) {
    bool inside = std::any_of(spans.begin(), spans.end(), [&](const Span& o) {
      return o.flag != s.flag && flags[o.flag].level >= flags[s.flag].level && o.begin <= s.begin &&
             s.end <= o.end && (o.end - o.begin) > (s.end - s.begin);
    });
    if (!inside) kept.push_back(s);
  }
  if (kept.empty()) return detection;

  std::vector<Token> tokens;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == ' ') {
      ++i;
    } else if (IsPunct(text[i])) {
      auto it = cues_.find(text.substr(i, 1));
      tokens.push_back(Token{i, i + 1, true, it == cues_.end() ? nullptr : &it->second});
      ++i;
    } else {
      std::size_t j = i;
      while (j < text.size() && text[j] != ' ' && !IsPunct(text[j])) ++j;
      auto it = cues_.find(text.substr(i, j - i));
      tokens.push_back(Token{i, j, false, it == cues_.end() ? nullptr : &it->second});
      i = j;
    }
  }

  for (const auto& s : kept) {
    std::size_t first = 0;
    while (first < tokens.size() && tokens[first].end <= s.begin) ++first;
    std::size_t last = first;
    while (last + 1 < tokens.size() && tokens[last + 1].begin < s.end) ++last;
    if (first >= tokens.size()) continue;
    Attribution a = Attribute(text, tokens, first, last);
    auto existing = std::find_if(detection.mentions.begin(), detection.mentions.end(),
                                 [&](const FlagMention& m) { return m.flag == s.flag; });
    if (existing == detection.mentions.end()) {
      detection.mentions.push_back(FlagMention{s.flag, a, s.begin, s.end});
    } else if (Rank(a) < Rank(existing->attribution)) {
      *existing = FlagMention{s.flag, a, s.begin, s.end};
    }
  }
  std::sort(detection.mentions.begin(), detection.mentions.end(),
            [](const FlagMention& a, const FlagMention& b) { return a.flag < b.flag; });
  return detection;
}

}  // namespace backcheck::dialog
