// Checks on an HTTP request before it is served or upgraded: where it may come from (Origin),
// whether its WebSocket key is well formed, what its body is. Pure functions, no I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace backcheck::server {

// ASCII case-insensitive equality (header values, schemes, media types).
bool EqualsNoCase(std::string_view a, std::string_view b);
// `s` without leading and trailing white space.
std::string_view Trim(std::string_view s);

// Whether a browser page at `origin` may use this server. No Origin header (bridges, scripts,
// curl) is allowed: Origin is what a browser sends, and it is browsers this protects against (a
// page making its visitors' browsers talk to us). Allowed: the server's own origin (the Origin's
// host and port equal the Host header), every entry of `allowed` (exact, case-insensitive), or
// anything when `allowed` holds "*". "null" (sandboxed frames, file: pages) only with "*".
bool OriginAllowed(std::string_view origin, std::string_view host, const std::vector<std::string>& allowed);

// RFC 6455 4.1: Sec-WebSocket-Key is the base64 of 16 bytes, so 24 characters ending in "==".
bool ValidWebSocketKey(std::string_view key);

// The path of a request target, without query or fragment: routing ignores "?x=1".
std::string_view TargetPath(std::string_view target);

// Whether a Content-Type names JSON ("application/json", with any parameters, any case).
bool IsJsonContentType(std::string_view content_type);

// Whether `given` equals the secret `secret`, in time that depends only on the secret's length
// (every byte is compared whatever differs first): for tokens.
bool SameSecret(std::string_view given, std::string_view secret);

// Parses a comma-separated flag value into its non-empty, trimmed items.
std::vector<std::string> SplitList(std::string_view list);

}  // namespace backcheck::server
