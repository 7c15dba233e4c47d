#include "server/http_responses.hpp"

namespace backcheck::server {

HttpResponse Respond(const HttpRequest& req, http::status status, std::string body, std::string content_type) {
  HttpResponse res{status, req.version()};
  res.set(http::field::server, "backcheck");
  res.set(http::field::content_type, content_type);
  res.set("X-Content-Type-Options", "nosniff");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

HttpResponse Refuse(const HttpRequest& req, http::status status, std::string body) {
  auto res = Respond(req, status, std::move(body), "text/plain");
  res.keep_alive(false);
  return res;
}

HttpResponse ErrorResponse(const HttpRequest& req, http::status status, const Error& error) {
  return Respond(req, status, ErrorJson(error, std::nullopt), "application/json");
}

}  // namespace backcheck::server
