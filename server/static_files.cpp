#include "server/static_files.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace backcheck::server {
namespace {

constexpr std::uintmax_t kMaxFileBytes = 8 << 20;

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace

StaticFiles::StaticFiles(const std::filesystem::path& root) {
  std::error_code ec;
  auto canonical = std::filesystem::canonical(root, ec);
  if (!ec && std::filesystem::is_directory(canonical, ec)) root_ = canonical;
}

std::optional<std::filesystem::path> StaticFiles::RelativePath(std::string_view target) {
  target = target.substr(0, target.find_first_of("?#"));
  if (target.empty() || target.front() != '/') return std::nullopt;
  auto decoded = PercentDecode(target);
  if (!decoded || decoded->find('\0') != std::string::npos || decoded->find('\\') != std::string::npos) {
    return std::nullopt;
  }
  std::filesystem::path relative;
  std::size_t i = 0;
  const std::string& d = *decoded;
  while (i < d.size()) {
    std::size_t j = d.find('/', i);
    if (j == std::string::npos) j = d.size();
    std::string_view segment(d.data() + i, j - i);
    if (segment == "..") return std::nullopt;
    if (!segment.empty() && segment != ".") relative /= std::string(segment);
    i = j + 1;
  }
  if (relative.empty() || d.back() == '/') relative /= "index.html";
  return relative;
}

std::string StaticFiles::ContentType(const std::filesystem::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

std::optional<StaticFiles::File> StaticFiles::Get(std::string_view target) const {
  if (root_.empty()) return std::nullopt;
  auto relative = RelativePath(target);
  if (!relative) return std::nullopt;
  std::error_code ec;
  auto path = std::filesystem::canonical(root_ / *relative, ec);  // follows symlinks
  if (ec) return std::nullopt;
  auto [root_end, path_it] = std::mismatch(root_.begin(), root_.end(), path.begin(), path.end());
  if (root_end != root_.end()) return std::nullopt;  // resolved outside the folder
  if (!std::filesystem::is_regular_file(path, ec) || std::filesystem::file_size(path, ec) > kMaxFileBytes) {
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream body;
  body << in.rdbuf();
  return File{body.str(), ContentType(path)};
}

}  // namespace backcheck::server
