// The widget's files are served from one folder and never from outside it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>

#include "server/static_files.hpp"

namespace fs = std::filesystem;
using backcheck::server::StaticFiles;

TEST_CASE("targets map to paths inside the folder", "[static]") {
  CHECK(StaticFiles::RelativePath("/") == fs::path("index.html"));
  CHECK(StaticFiles::RelativePath("/widget.js?v=3") == fs::path("widget.js"));
  CHECK(StaticFiles::RelativePath("/a/b.css") == fs::path("a/b.css"));
  CHECK(StaticFiles::RelativePath("//etc/passwd") == fs::path("etc/passwd"));  // relative, never absolute
  CHECK(StaticFiles::RelativePath("/docs/") == fs::path("docs/index.html"));
}

TEST_CASE("traversal and encoding tricks are refused", "[static]") {
  for (const char* target : {"/../README.md", "/%2e%2e/README.md", "/%2E%2E%2FREADME.md", "/..%2f..%2fetc/passwd",
                             "/web/../../etc/passwd", "/a/..", "/%00", "/a%5c..%5cb", "/%zz", "/%2", "relative"}) {
    CAPTURE(target);
    CHECK_FALSE(StaticFiles::RelativePath(target));
  }
}

TEST_CASE("files are served with their content type; a symlink out of the folder is not", "[static]") {
  std::random_device rd;
  const fs::path base = fs::temp_directory_path() / ("backcheck-web-" + std::to_string(rd()));
  const fs::path web = base / "web";
  fs::create_directories(web);
  std::ofstream(web / "index.html") << "<p>hi</p>";
  std::ofstream(web / "app.js") << "1;";
  std::ofstream(base / "secret.txt") << "secret";
  fs::create_symlink(base / "secret.txt", web / "leak.txt");
  StaticFiles files(web);

  auto index = files.Get("/");
  REQUIRE(index);
  CHECK(index->body == "<p>hi</p>");
  CHECK(index->content_type == "text/html; charset=utf-8");
  CHECK(files.Get("/app.js")->content_type == "text/javascript; charset=utf-8");
  CHECK_FALSE(files.Get("/leak.txt"));
  CHECK_FALSE(files.Get("/../secret.txt"));
  CHECK_FALSE(files.Get("/missing.css"));
  fs::remove_all(base);
}

TEST_CASE("a missing folder serves nothing", "[static]") {
  StaticFiles files("/nonexistent/backcheck/web");
  CHECK_FALSE(files.Get("/"));
}
