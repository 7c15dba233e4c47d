// The responses every HTTP handler builds: a body with its type, a refusal that ends the
// connection, an error object (protocol's ErrorJson) with its status.
#pragma once

#include <string>

#include "server/beast.hpp"
#include "server/protocol.hpp"

namespace backcheck::server {

using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

HttpResponse Respond(const HttpRequest& req, http::status status, std::string body, std::string content_type);
// A response that ends the connection (the request is refused before it is served).
HttpResponse Refuse(const HttpRequest& req, http::status status, std::string body);
HttpResponse ErrorResponse(const HttpRequest& req, http::status status, const Error& error);

}  // namespace backcheck::server
