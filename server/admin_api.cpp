#include "server/admin_api.hpp"

#include <memory>

#include "server/json_writer.hpp"
#include "server/knowledge_reload.hpp"
#include "server/log.hpp"
#include "server/operator_api.hpp"

namespace backcheck::server {
namespace {

constexpr std::string_view kReloadPath = "/v1/admin/reload";

HttpResponse JsonRefusal(const HttpRequest& req, http::status status, std::string_view message) {
  return Respond(req, status, JsonObject(64 + message.size()).String("error", message).Done(), "application/json");
}

}  // namespace

bool IsAdminApi(std::string_view path) { return path == kReloadPath; }

void ServeAdminApi(const HttpRequest& req, ServerContext& context, std::function<void(HttpResponse)> respond) {
  if (!FromOwnOrigin(req)) {
    return respond(JsonRefusal(req, http::status::forbidden, "administration is only from this server's own pages"));
  }
  if (req.method() != http::verb::post) {
    auto res = JsonRefusal(req, http::status::method_not_allowed, "use POST");
    res.set(http::field::allow, "POST");
    return respond(std::move(res));
  }
  const auto name = OperatorOf(req, context);
  if (!name) {
    BACKCHECK_LOG_EVERY(kWarn, "operator_refused", 10).Str("answered", "401").Str("path", kReloadPath);
    auto res = JsonRefusal(req, http::status::unauthorized,
                           context.config.operators.empty()
                               ? "this server has no operators (--operators): reload it with SIGHUP"
                               : "a valid operator token or sign-in is required");
    res.set(http::field::www_authenticate, "Bearer");
    return respond(std::move(res));
  }
  if (!context.reloader) {
    return respond(JsonRefusal(req, http::status::service_unavailable, "this server cannot reload its knowledge base"));
  }
  BACKCHECK_LOG(kInfo, "knowledge_reload_requested").Str("operator", *name);
  auto head = std::make_shared<HttpRequest>();  // what the answer needs of the request, later
  head->version(req.version());
  head->keep_alive(req.keep_alive());
  context.reloader->Start("http", [head, respond = std::move(respond)](const ReloadResult& result) {
    const http::status status = result.outcome == ReloadResult::Outcome::kReloaded ? http::status::ok
                                : result.outcome == ReloadResult::Outcome::kBusy   ? http::status::conflict
                                                                                   : http::status::unprocessable_entity;
    auto res = Respond(*head, status, ReloadResultJson(result), "application/json");
    res.set(http::field::cache_control, "no-store");
    if (result.outcome == ReloadResult::Outcome::kBusy) res.set(http::field::retry_after, "1");
    respond(std::move(res));
  });
}

}  // namespace backcheck::server
