// The knowledge-base loader (knowledge/loader.hpp) with one of its files replaced by the input.
// Built once per file: BACKCHECK_FUZZ_KB_FILE names it ("data/topics.jsonc", "article.txt"...).
//
// At start-up the real knowledge folder is copied to a temporary folder (under $TMPDIR); each
// input is written there as that one file and the folder is loaded. KnowledgeError is the
// expected refusal; any other exception escaping, or a sanitizer report, is a bug. A folder that
// loads has been validated, so the engine is built from it and a short conversation runs, and
// every reply must be UTF-8 and writable as JSON.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "dialog/engine.hpp"
#include "fuzz/fuzz_support.hpp"
#include "knowledge/loader.hpp"

#ifndef BACKCHECK_FUZZ_KB_FILE
#error "define BACKCHECK_FUZZ_KB_FILE, e.g. \"data/topics.jsonc\""
#endif

namespace fs = std::filesystem;
using backcheck::fuzz::Check;

namespace {

fs::path g_dir;

void RemoveCopy() {
  std::error_code ec;
  if (!g_dir.empty()) fs::remove_all(g_dir, ec);
}

const fs::path& KbCopy() {
  if (g_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = (fs::path(tmp && *tmp ? tmp : "/tmp") / "backcheck-fuzz-kb-XXXXXX").string();
    if (!mkdtemp(pattern.data())) backcheck::fuzz::Fail("mkdtemp failed", pattern);
    g_dir = pattern;
    fs::copy(BACKCHECK_DEFAULT_KB_DIR, g_dir, fs::copy_options::recursive);
    std::atexit(RemoveCopy);
  }
  return g_dir;
}

void Converse(const std::shared_ptr<const backcheck::knowledge::KnowledgeBase>& kb) {
  std::optional<backcheck::dialog::Engine> engine;
  try {
    engine.emplace(kb);
  } catch (const std::runtime_error&) {
    return;  // documented: a pattern set that RE2 cannot compile
  }
  auto state = engine->Start();
  for (const char* text : {"hi", "My upper back hurts after rows yesterday", "no", "no", "no", "what is doms?",
                           "my left arm is numb", "thanks, bye"}) {
    const auto urgency = state.urgency;
    auto turn = engine->Respond(state, text);
    Check(turn.state.urgency >= urgency, "urgency went down");
    const auto& r = turn.reply;
    Check(backcheck::fuzz::IsValidUtf8(r.text), "a reply's text is not UTF-8", r.text);
    for (const auto& s : r.sources) {
      Check(backcheck::fuzz::IsValidUtf8(s.section) && backcheck::fuzz::IsValidUtf8(s.quote), "a source is not UTF-8");
    }
    (void)nlohmann::json(r).dump();  // what the server writes; throws on invalid UTF-8
    state = std::move(turn.state);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fs::path& dir = KbCopy();
  {
    std::ofstream out(dir / BACKCHECK_FUZZ_KB_FILE, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    Check(static_cast<bool>(out), "cannot write the knowledge file copy");
  }
  std::shared_ptr<const backcheck::knowledge::KnowledgeBase> kb;
  try {
    kb = backcheck::knowledge::LoadKnowledgeBase(dir);
  } catch (const backcheck::knowledge::KnowledgeError&) {
    return 0;
  }
  Check(kb != nullptr, "LoadKnowledgeBase returned null");
  // The data files are JSON, so UTF-8 by the parser's check; the article is read as it is, and
  // the replies quote it: only a UTF-8 article can give JSON replies.
  if (std::string_view(BACKCHECK_FUZZ_KB_FILE) != "article.txt" ||
      backcheck::fuzz::IsValidUtf8(backcheck::fuzz::AsView(data, size))) {
    Converse(kb);
  }
  return 0;
}
