// The operators' HTTP API, for the console at /operator and for programs:
//   POST   /v1/operator/session   {"token": "..."} -> 204 and the session cookie; 401 otherwise
//   GET    /v1/operator/session   -> 200 {"operator": name} while signed in; 401 otherwise
//   DELETE /v1/operator/session   -> 204, the session ended and its cookie cleared
//   GET    /v1/operator/conversations/ID[?before=SEQ] -> 200 the transcript; 404 unknown
// Every call but the sign-in needs a signed-in cookie or `Authorization: Bearer <token>`.
// A browser's call is accepted only from the server's own origin (whatever --allowed-origins
// says, which is for the chat widget): with the SameSite=Strict cookie and JSON-only bodies,
// another site cannot act for a signed-in operator (CSRF).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "server/http_responses.hpp"
#include "server/server_context.hpp"

namespace backcheck::server {

// The operator a request speaks for: a bearer token, else a signed-in browser's cookie.
std::optional<std::string> OperatorOf(const HttpRequest& req, const ServerContext& context);
// Whether the request has no Origin (a program) or the server's own (the console).
bool FromOwnOrigin(const HttpRequest& req);

// Whether `path` is one of the API's; then ServeOperatorApi answers it.
bool IsOperatorApi(std::string_view path);
// `respond` runs once, maybe later and on a store thread: the caller hands it to its strand.
void ServeOperatorApi(const HttpRequest& req, std::string_view path, ServerContext& context,
                      std::function<void(HttpResponse)> respond);

}  // namespace backcheck::server
