// A private copy of the built-in knowledge base (article.txt and data/), removed afterwards:
// the loader tests change one thing in it and load it.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "knowledge/loader.hpp"

namespace backcheck::test {

class KbCopy {
 public:
  KbCopy() {
    std::random_device rd;
    dir_ = std::filesystem::temp_directory_path() / ("backcheck-kb-" + std::to_string(rd()) + std::to_string(rd()));
    const std::filesystem::path source = BACKCHECK_DEFAULT_KB_DIR;
    std::filesystem::create_directories(dir_);
    std::filesystem::copy_file(source / "article.txt", dir_ / "article.txt");
    std::filesystem::copy(source / "data", dir_ / "data", std::filesystem::copy_options::recursive);
  }
  ~KbCopy() { std::filesystem::remove_all(dir_); }
  KbCopy(const KbCopy&) = delete;
  KbCopy& operator=(const KbCopy&) = delete;

  const std::filesystem::path& dir() const { return dir_; }

  // Replaces the first occurrence of `from` in data/`file` (or article.txt); `from` must occur.
  void Replace(const std::string& file, const std::string& from, const std::string& to) {
    const std::filesystem::path path = file == "article.txt" ? dir_ / file : dir_ / "data" / file;
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    const auto at = text.find(from);
    INFO(file << " should contain: " << from);
    REQUIRE(at != std::string::npos);
    text.replace(at, from.size(), to);
    std::ofstream(path, std::ios::trunc) << text;
  }

  // The loader's error message; fails the test if loading succeeds. Any other exception (an
  // nlohmann::json exception above all) escapes and fails the test too.
  std::string Error() const {
    try {
      knowledge::LoadKnowledgeBase(dir_);
    } catch (const knowledge::KnowledgeError& e) {
      return e.what();
    }
    FAIL_CHECK("the knowledge base was accepted");
    return "(accepted)";
  }

 private:
  std::filesystem::path dir_;
};

}  // namespace backcheck::test
