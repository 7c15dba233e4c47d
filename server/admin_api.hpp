// The administration API:
//   POST /v1/admin/reload -> 200 {"outcome":"reloaded","knowledge_version":...} once the new
//                            knowledge base answers; 422 {"outcome":"refused","error":...} when the
//                            folder is invalid (the old one still answers); 409 "busy" while
//                            another reload runs (server/knowledge_reload.hpp).
// Authorised like the operators' API (operator_api.hpp): `Authorization: Bearer <operator
// token>` or a signed-in operator's cookie (401 otherwise), and a browser only from the server's
// own origin (403 otherwise).
#pragma once

#include <functional>
#include <string_view>

#include "server/http_responses.hpp"
#include "server/server_context.hpp"

namespace backcheck::server {

bool IsAdminApi(std::string_view path);
// `respond` runs once, maybe later and on the reloader's thread: the caller hands it to its strand.
void ServeAdminApi(const HttpRequest& req, ServerContext& context, std::function<void(HttpResponse)> respond);

}  // namespace backcheck::server
