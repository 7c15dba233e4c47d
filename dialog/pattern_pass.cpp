#include "dialog/pattern_pass.hpp"

namespace backcheck::dialog {

PatternPass::PatternPass(const std::vector<std::string>& intents, const std::vector<std::string>& red_flags,
                         const std::vector<std::string>& slots, std::int64_t max_mem) {
  RE2::Options options;  // as each group's own set: only the memory differs
  options.set_log_errors(false);
  options.set_max_mem(max_mem);
  auto set = std::make_unique<RE2::Set>(options, RE2::UNANCHORED);
  for (const auto* group : {&intents, &red_flags, &slots}) {
    if (group == &red_flags) red_flags_begin_ = static_cast<int>(intents.size());
    if (group == &slots) slots_begin_ = static_cast<int>(intents.size() + red_flags.size());
    for (const auto& pattern : *group) {
      if (set->Add(pattern, nullptr) < 0) return;  // each group's own set reports its errors
    }
  }
  if (set->Compile()) set_ = std::move(set);
}

bool PatternPass::Match(std::string_view text, Hits& hits) const {
  hits.intents.clear();
  hits.red_flags.clear();
  hits.slots.clear();
  if (!set_) return false;
  thread_local std::vector<int> all;  // scratch kept per thread: one allocation fewer a message
  all.clear();
  RE2::Set::ErrorInfo info{RE2::Set::kNoError};
  if (!set_->Match(text, &all, &info)) return info.kind == RE2::Set::kNoError;  // else: no answer
  hits.intents.reserve(all.size());  // one allocation, not one per doubling
  for (int h : all) {
    if (h < red_flags_begin_) {
      hits.intents.push_back(h);
    } else if (h < slots_begin_) {
      hits.red_flags.push_back(h - red_flags_begin_);
    } else {
      hits.slots.push_back(h - slots_begin_);
    }
  }
  return true;
}

}  // namespace backcheck::dialog
