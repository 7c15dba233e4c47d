// Where the binaries find their files at run time: the knowledge base, the widget's web files and
// (for backcheck lexicon-report) the tests folder, when no flag names them.
//
// Installed (cmake --install, the .deb): PREFIX/bin/chat-server finds PREFIX/share/backcheck/knowledge
// and PREFIX/share/backcheck/web through /proc/self/exe, wherever PREFIX is. In a build tree the
// binaries sit next to backcheck-dev-paths.txt, which CMake writes at configure time and which is
// never installed: it names the source tree's folders. A binary moved anywhere else finds neither
// and says so (ResourceError), naming the flag to pass.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace backcheck::common {

struct ResourceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The folder of the running binary (/proc/self/exe), or empty when it cannot be read.
std::string ExecutableDir();

// `what` is "knowledge", "web" or "tests". The installed folder next to the binary
// (../share/backcheck/WHAT) when it exists, else the build tree's (backcheck-dev-paths.txt next to
// the binary), else nothing.
std::optional<std::string> FindResource(const std::string& what);

// FindResource, or a ResourceError naming where it looked and `flag` (e.g. "--kb DIR").
std::string RequireResource(const std::string& what, const std::string& flag);

// For --help: what FindResource resolves to, or how it is looked for when it finds nothing.
std::string DescribeDefault(const std::string& what);

}  // namespace backcheck::common
