// The one JSON writer for every frame the server sends (replies, errors, started, ended,
// escalations, operator notices). It cannot throw and cannot produce invalid JSON or invalid
// UTF-8: whatever bytes it is given, a byte sequence that is not UTF-8 is written as U+FFFD.
// (nlohmann's dump() throws type_error.316 on invalid UTF-8; one such throw from an error writer
// once took the whole server down.)
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace backcheck::server {

// Appends `s` as a JSON string literal, quotes included.
void AppendJsonString(std::string& out, std::string_view s) noexcept;
// Appends a JSON array of strings.
void AppendJsonStrings(std::string& out, const std::vector<std::string>& items) noexcept;

// The longest prefix of `s` of at most `max_bytes` bytes that does not split a UTF-8 sequence.
std::string_view TruncateUtf8(std::string_view s, std::size_t max_bytes) noexcept;

// Builds one JSON object, field by field, in the order written:
//   JsonObject o; o.String("type", "error").Int("seq", 3); std::string frame = o.Done();
// Keys are our own ASCII literals; values are escaped by AppendJsonString.
class JsonObject {
 public:
  explicit JsonObject(std::size_t reserve = 128) { out_.reserve(reserve); out_ += '{'; }

  JsonObject& String(std::string_view key, std::string_view value);
  JsonObject& Int(std::string_view key, std::int64_t value);
  JsonObject& Bool(std::string_view key, bool value);
  JsonObject& Strings(std::string_view key, const std::vector<std::string>& values);
  // `json` must already be valid JSON (an object or array this writer made).
  JsonObject& Raw(std::string_view key, std::string_view json);
  std::string Done();  // the object; the builder is empty afterwards

 private:
  void Key(std::string_view key);
  std::string out_;
  bool first_ = true;
};

}  // namespace backcheck::server
