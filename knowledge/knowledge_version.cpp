#include "knowledge/knowledge_version.hpp"

#include <openssl/evp.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace backcheck::knowledge {

const std::vector<std::string>& KnowledgeFiles() {
  static const std::vector<std::string> files = {
      "article.txt",           "data/concepts.jsonc", "data/emoji.jsonc",      "data/flow.jsonc",
      "data/intents.jsonc",    "data/language.jsonc", "data/quantities.jsonc", "data/red_flags.jsonc",
      "data/topics.jsonc"};
  return files;
}

std::string KnowledgeVersion(const std::filesystem::path& dir) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || !EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr)) throw std::runtime_error("SHA-256 unavailable");
  auto feed = [&](const std::string& bytes) { EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()); };
  for (const std::string& name : KnowledgeFiles()) {
    feed(name);
    feed(std::string(1, '\0'));
    std::ifstream in(dir / name, std::ios::binary);
    if (!in) {
      feed("-");
      continue;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string content = ss.str();
    feed(std::to_string(content.size()));
    feed(std::string(1, '\0'));
    feed(content);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!EVP_DigestFinal_ex(ctx.get(), digest, &length)) throw std::runtime_error("SHA-256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < 8 && i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

}  // namespace backcheck::knowledge
