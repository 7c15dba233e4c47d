#include "common/paths.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace backcheck::common {
namespace fs = std::filesystem;

std::string ExecutableDir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec || exe.empty()) return {};
  return exe.parent_path().string();
}

namespace {

// The line "WHAT=PATH" of backcheck-dev-paths.txt next to the binary (a build tree only).
std::optional<std::string> BuildTreeResource(const fs::path& dir, const std::string& what) {
  std::ifstream in(dir / "backcheck-dev-paths.txt");
  for (std::string line; std::getline(in, line);) {
    if (line.size() > what.size() && line.compare(0, what.size(), what) == 0 && line[what.size()] == '=') {
      return line.substr(what.size() + 1);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> FindResource(const std::string& what) {
  const std::string dir = ExecutableDir();
  if (dir.empty()) return std::nullopt;
  std::error_code ec;
  const fs::path installed = fs::path(dir).parent_path() / "share" / "backcheck" / what;
  if (fs::is_directory(installed, ec)) return installed.lexically_normal().string();
  if (auto dev = BuildTreeResource(dir, what); dev && fs::is_directory(*dev, ec)) return dev;
  return std::nullopt;
}

std::string RequireResource(const std::string& what, const std::string& flag) {
  if (auto found = FindResource(what)) return *found;
  const std::string dir = ExecutableDir();
  const std::string looked =
      dir.empty() ? std::string("(the binary's own location, /proc/self/exe, cannot be read)")
                  : (fs::path(dir).parent_path() / "share" / "backcheck" / what).lexically_normal().string();
  throw ResourceError("no " + what + " folder found: looked for " + looked +
                      " (an installed copy: cmake --install, or the package) and for a build tree's " +
                      "backcheck-dev-paths.txt next to the binary; pass " + flag);
}

std::string DescribeDefault(const std::string& what) {
  if (auto found = FindResource(what)) return *found;
  return "../share/backcheck/" + what + " next to the binary (none found)";
}

}  // namespace backcheck::common
