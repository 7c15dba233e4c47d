// Static files of the widget, served from one folder and never from outside it: ".." segments
// (also percent-encoded), backslashes and NUL are refused, and the resolved path (symlinks
// followed) must still lie inside the folder.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace backcheck::server {

class StaticFiles {
 public:
  // `root` may not exist (then every lookup fails).
  explicit StaticFiles(const std::filesystem::path& root);

  struct File {
    std::string body;
    std::string content_type;
  };
  // The file for a request target ("/", "/widget.js?v=2"), or nullopt (answer 404).
  std::optional<File> Get(std::string_view target) const;

  // Exposed for tests: the path a target maps to, before the file system is consulted.
  static std::optional<std::filesystem::path> RelativePath(std::string_view target);
  static std::string ContentType(const std::filesystem::path& path);

 private:
  std::filesystem::path root_;  // canonical, empty when the folder does not exist
};

}  // namespace backcheck::server
