// StaticFiles::RelativePath on any request target: whatever it maps a target to must be a
// relative path with no ".." component (and no NUL or backslash), so that root / path can never
// leave the widget's folder before symlinks are even considered.
#include <filesystem>

#include "fuzz/fuzz_support.hpp"
#include "server/static_files.hpp"

using backcheck::fuzz::Check;
namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view target = backcheck::fuzz::AsView(data, size);
  const auto path = backcheck::server::StaticFiles::RelativePath(target);
  if (!path) return 0;
  const std::string s = path->string();
  Check(!s.empty(), "empty path", target);
  Check(path->is_relative() && !path->has_root_path(), "absolute path", s);
  Check(s.find('\0') == std::string::npos, "NUL in the path", target);
  Check(s.find('\\') == std::string::npos, "backslash in the path", target);
  for (const auto& part : *path) Check(part != "..", "'..' component", s);
  // Lexically it stays inside any root.
  const fs::path root = "/srv/web";
  const fs::path joined = (root / *path).lexically_normal();
  const fs::path rel = joined.lexically_relative(root);
  Check(!rel.empty() && *rel.begin() != "..", "root / path leaves the root", joined.string());
  return 0;
}
