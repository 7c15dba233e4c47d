// The knowledge base: everything the assistant says and recognises, loaded from data files.
//
// Nothing here knows about dialogue mechanics or transport; the `dialog` library compiles these
// values into matchers and a state machine. A KnowledgeBase returned by LoadKnowledgeBase() has
// been validated (see loader.hpp), so its consumers may rely on the invariants documented below.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "knowledge/article.hpp"
#include "knowledge/text_stages.hpp"

namespace backcheck::knowledge {

// Urgency levels, lowest to highest (SPEC section 5). The numeric order is the severity order.
enum class Urgency : std::uint8_t { kNone = 0, kSeeDoctor = 1, kUrgent = 2, kEmergency = 3 };

const char* UrgencyName(Urgency u);                          // "none", "see_doctor", ...
std::optional<Urgency> ParseUrgency(std::string_view name);  // inverse of UrgencyName

// A citation: a section heading of the article and a quote that occurs verbatim in that section.
struct Source {
  std::string section;
  std::string quote;
};

// What the assistant answers for one intent.
struct Topic {
  std::string id;  // an intent id
  std::string answer;
  std::vector<Source> sources;
  std::vector<std::string> quick_replies;
};

// How the dialogue treats an intent (intents.jsonc "kind").
enum class IntentKind : std::uint8_t {
  kSocial,    // greeting, goodbye, thanks, help
  kReport,    // the person describes their own pain
  kQuestion,  // answered from the knowledge base
  kAnswer,    // yes / no
  kOther,     // out of scope
  kFallback,  // nothing matched (no patterns)
};

struct Intent {
  std::string id;
  // The SPEC section 4 intent a reply names when this one matched ("as"; empty: `id` itself).
  // Finer intents than the protocol's ("can_it_wait" as "warning_signs") get answers of their
  // own, per state, without changing what clients see.
  std::string reported_as;
  IntentKind kind = IntentKind::kQuestion;
  int priority = 0;                        // the higher wins when several intents match
  std::map<std::string, int> state_priority;  // overrides `priority` in the named dialogue states
  std::vector<std::string> patterns;       // RE2, matched against normalised text
};

// A red flag of SPEC section 5 and the lexicon that recognises a mention of it.
// A concept of the red-flag lexicon (concepts.jsonc): the lay words for one idea ("BLOOD":
// blood, bleeding...). Terms are words of normalised text, matched on their stems
// (dialog/text/stems.hpp); "*" in a term is any one word ("weight on * chest"); a word written
// "=chills" matches only that form (not "chilling", which shares its stem).
struct Concept {
  std::string id;
  std::vector<std::string> terms;
};

// A flag (or a question about one) from concepts found together in one clause or sentence:
// "COUGH + BLOOD", "clause: BREATH + PAIN|WORSE - RELIEF". Each part is one concept of several
// alternatives; every part must be found in the same scope, and no concept after " - ".
struct ConceptRule {
  std::string source;                          // as written in the data, for explain and errors
  std::vector<std::vector<std::size_t>> parts;  // concept indices (RedFlagLexicon::concepts)
  std::vector<std::size_t> unless;              // none of these may be in the scope
  bool clause = false;                          // false: the sentence
};

struct RedFlag {
  std::string id;
  Urgency level = Urgency::kUrgent;
  std::string origin;       // "article", or "safety extension (...)"
  std::string name;         // how replies name the symptom: "numbness in your arms or hands"
  std::string explanation;  // why it matters; extensions say they are not from the article
  std::vector<Source> sources;
  std::vector<std::string> patterns;  // any one of them is a mention (fixed phrases, RE2)
  std::vector<ConceptRule> rules;     // any one of them is a mention (concepts)
  // The safety net: partial evidence for the flag ("BLOOD" without "COUGH") that asks `question`
  // instead of deciding; a "yes" affirms the flag.
  std::vector<ConceptRule> ask_when;
  std::string question;
  std::vector<std::string> except;    // a mention overlapping one of these is not a mention
  std::vector<std::string> requires_;  // when non-empty, one must also match in the same sentence
};

// Phrase lists (whole words, normalised) that decide whom a mention belongs to and whether it is
// affirmed. See dialog/safety/red_flag_detector.hpp for how each list is used.
struct CueLexicon {
  std::vector<std::string> negation;           // "no", "not", "never", "without"...
  std::vector<std::string> pseudo_negation;    // "not sure", "no idea": look like negation, are not
  std::vector<std::string> post_negation;      // "no", "none": a short answer after it ("fever? no")
  int negation_window = 8;                     // words a negation reaches forward
  std::vector<std::string> clause_breaks;      // "but", "although", "however", "because"...
  std::vector<std::string> soft_breaks;        // "and", ",": a break only before a subject_start
  std::vector<std::string> subject_starts;     // "i", "my", "it", "the", "just"...
  std::vector<std::string> hypothetical;       // "what if", "in case", "could i get"...
  std::vector<std::string> concern;            // "worry about": hypothetical unless definite
  std::vector<std::string> definite;           // "the", "this", "my": an existing symptom
  std::vector<std::string> question_starts;    // "what", "does", "is": a question
  std::vector<std::string> informational;      // "sign of", "cause", "mean": asking about
  std::vector<std::string> reported_speech;    // "i read", "i heard": about it, not having it
  std::vector<std::string> first_person;       // "i", "me", "my", "im"
  std::vector<std::string> third_party;        // "my friend", "he", "she", "someone"...
  std::vector<std::string> past;               // "last year", "years ago", "used to", "went away"
  std::vector<std::string> continuing;         // "still", "started", "since": a past cue that is not
  std::vector<std::string> effort_activity;    // "sprint", "hiit", "burpees": hard exercise
  std::vector<std::string> effort_passed;      // "back to normal", "caught my breath": it passed
  std::vector<std::string> effort_flags;       // flag ids that hard exercise brings on for a while
};

struct Guidance {
  Urgency level = Urgency::kNone;
  std::string text;         // what to do now; replies at this level start with it
  std::string third_party;  // the same for a symptom someone else has
  std::string conditional;  // said with a question about a flag at this level: "If you are, ..."
  std::string banner;       // one line a client keeps on screen once the conversation is at this level
};

struct RedFlagLexicon {
  std::vector<RedFlag> flags;  // at most 64
  std::vector<Concept> concepts;    // concepts.jsonc
  std::vector<std::string> idioms;  // concepts.jsonc: a concept inside one is not a mention
  // concepts.jsonc: concepts that give context (places, objects, "i"), whose words the speller
  // never corrects a typo into.
  std::vector<std::string> context_concepts;
  CueLexicon cues;
  std::vector<Guidance> guidance;  // one per level above none
};

struct ScreeningQuestion {
  std::string id;
  std::string text;
  std::vector<std::string> flags;  // a "yes" affirms these
};

// A piece of advice given when the conversation's slots fit (SPEC section 3, tailoring).
struct TailoringRule {
  std::string id;
  std::optional<int> hours_min, hours_max;  // hours since training, inclusive
  bool hours_unknown = false;  // applies only when the hours since training are not known (never with hours_min/max)
  std::string exercise_category;            // "pull", "overhead"... empty: any
  std::string quality;                      // "ache", "sharp", "burning"; empty: any
  std::string quality_not;                  // a quality this rule does not fit ("sharp" is not DOMS)
  std::string text;  // may contain {hours} and {exercise}
  std::vector<Source> sources;
};

// What a state is for in the dialogue (SPEC section 3): the engine picks its policy by role,
// never by a state's id. Each role is taken by exactly one state.
enum class StateRole : std::uint8_t { kWelcome, kScreening, kAdvising, kEscalated, kEnded };

// An answer a state gives to an intent instead of the intent's topic ("thanks" once escalated).
struct StateAnswer {
  std::string text;
  std::vector<std::string> quick_replies;  // empty: the state's own
  std::vector<Source> sources;
};

struct FlowState {
  std::string id;
  StateRole role = StateRole::kAdvising;
  bool terminal = false;
  // Transparent (std::less<>): looked up by string_view per message, without a copy.
  std::map<std::string, std::string, std::less<>> on;  // event -> next state
  std::map<std::string, StateAnswer, std::less<>> answers;  // intent id -> the answer in this state
};

// The dialogue as data: states, transitions, the screening questions and the fixed texts.
struct Flow {
  std::string initial;
  std::vector<FlowState> states;
  std::vector<ScreeningQuestion> screening;
  std::vector<TailoringRule> tailoring;
  std::map<std::string, std::string> texts;  // named texts: "greeting", "screening_intro"...
  std::map<std::string, std::vector<std::string>> quick_replies;  // per state, and named sets
  // What the assistant says when it did not understand, in turn (never the same twice in a row).
  std::vector<std::string> fallbacks;

  const FlowState* FindState(std::string_view id) const;
  const FlowState& StateWithRole(StateRole role) const;  // the loader checks there is one
  const std::string& Text(const std::string& name) const;  // empty string when absent
  const std::vector<std::string>& QuickReplies(const std::string& name) const;  // empty when absent
};

// Word and phrase rewrites applied by the normaliser, and slot vocabularies.
struct Language {
  std::map<std::string, std::string> rewrites;  // "dont" -> "do not", "sholder" -> "shoulder", "cannot breath" -> "cannot breathe"
  struct Exercise {
    std::string value;     // "rows"
    std::string category;  // "pull"
    std::vector<std::string> patterns;
  };
  struct Quality {
    std::string value;
    std::vector<std::string> patterns;
  };
  struct TimeExpression {
    std::string pattern;  // RE2; with a capture group, the group is a number (digits or a word)
    int hours = 0;        // the hours it means, or the hours per unit of the captured number
  };
  // Words for dates resolved against the message's time (dialog/dates.hpp): "on monday",
  // "last night", "the day before yesterday", "sunday morning", "over the weekend".
  struct DateWords {
    std::vector<std::vector<std::string>> weekdays;  // 7, Monday first: the name, then short forms
    std::vector<std::string> this_words;    // before a weekday, let it mean today: "this monday"
    std::map<std::string, int> days;        // phrase -> days before today: "yesterday" -> 1
    std::map<std::string, int> day_parts;   // part of a day -> its local hour: "morning" -> 9
    std::map<std::string, int> part_days;   // word before a part -> days before today: "last" (night) -> 1
    std::vector<std::string> weekend_words;  // "weekend"
    std::vector<int> weekend_days;           // indices into weekdays: Saturday, Sunday
    int today_hours = 0;  // "today" without a part of the day: how long ago is then unknown
  };
  std::vector<Exercise> exercises;
  std::vector<Quality> qualities;
  std::vector<TimeExpression> times;
  // RE2 patterns of words that say a message speaks of training ("gym", "workout", "trained"):
  // a time in a message is the training's only with one of them or an exercise, or in answer to
  // "when did you train?"; "it started hurting this morning" dates the pain, not the training.
  std::vector<std::string> training_patterns;
  DateWords dates;
  std::map<std::string, int> numbers;  // number words a time expression may capture: "two" -> 2
  std::vector<std::string> stopwords;  // ignored by passage retrieval
  double retrieval_min_score = 0;      // below it, the fallback reply is given instead of a passage
  QuantityTable quantities;  // quantities.jsonc: the normaliser's numbers-and-units stage
  EmojiTable emoji;          // emoji.jsonc: the normaliser's emoji stage
};

struct KnowledgeBase {
  std::string dir;
  // A hash of the folder's content (knowledge_version.hpp): which content a conversation was
  // answered with, shown by /healthz and /metrics. Empty for one not loaded from a folder.
  std::string version;
  // Problems the loader found that do not refuse the data (each also printed to stderr, one line
  // each): "language.jsonc: rewrite 'b/c': can never apply: ...".
  std::vector<std::string> warnings;
  Article article;
  std::vector<Topic> topics;
  std::vector<Intent> intents;
  RedFlagLexicon red_flags;
  Flow flow;
  Language language;

  const Topic* FindTopic(std::string_view id) const;
  const Intent* FindIntent(std::string_view id) const;
  const RedFlag* FindFlag(std::string_view id) const;
};

}  // namespace backcheck::knowledge
