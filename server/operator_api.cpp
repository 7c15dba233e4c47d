#include "server/log.hpp"
#include "server/operator_api.hpp"

#include <nlohmann/json.hpp>

#include "server/json_writer.hpp"
#include "server/request_checks.hpp"

namespace backcheck::server {
namespace {

constexpr std::string_view kSessionPath = "/v1/operator/session";
constexpr std::string_view kConversationsPath = "/v1/operator/conversations/";
constexpr std::size_t kTranscriptTurns = 200;  // a page of the transcript; `before` pages back

HttpResponse JsonError(const HttpRequest& req, http::status status, std::string message) {
  return ErrorResponse(req, status, Error{status == http::status::not_found ? ErrorCode::kUnknownConversation
                                                                             : ErrorCode::kBadRequest,
                                          std::move(message)});
}

HttpResponse StoreUnreadable(const HttpRequest& req) {
  return ErrorResponse(req, http::status::service_unavailable,
                       Error{ErrorCode::kStoreUnavailable, "the store cannot be read right now"});
}

HttpResponse Unauthorized(const HttpRequest& req) {
  auto res = Respond(req, http::status::unauthorized,
                     R"({"type":"error","code":"bad_request","message":"sign in: a valid operator token is required"})",
                     "application/json");
  res.set(http::field::www_authenticate, "Bearer");
  return res;
}

// The cookie is Secure when the browser reached us over TLS: its Origin says so (a browser sends
// one with every POST), whether TLS ends here or at a proxy in front.
bool OverTls(const HttpRequest& req) {
  const std::string_view origin = req[http::field::origin];
  return origin.size() > 8 && EqualsNoCase(origin.substr(0, 8), "https://");
}

HttpResponse SignIn(const HttpRequest& req, ServerContext& context) {
  if (!IsJsonContentType(req[http::field::content_type])) {
    return Respond(req, http::status::unsupported_media_type, "send Content-Type: application/json\n", "text/plain");
  }
  auto body = nlohmann::json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
  const auto token = body.is_object() ? body.find("token") : body.end();
  if (!body.is_object() || token == body.end() || !token->is_string()) {
    return JsonError(req, http::status::bad_request, "send {\"token\": \"...\"}");
  }
  const auto name = context.config.operators.Authenticate(token->get_ref<const std::string&>());
  if (!name) {
    context.metrics.operator_sign_ins_refused.fetch_add(1, std::memory_order_relaxed);
    BACKCHECK_LOG_EVERY(kWarn, "operator_sign_in_refused", 10).Str("answered", "401");  // never the token
    return Unauthorized(req);
  }
  auto res = Respond(req, http::status::no_content, "", "text/plain");
  res.set(http::field::set_cookie, context.sign_ins.SetCookie(context.sign_ins.Create(*name), OverTls(req)));
  res.set(http::field::cache_control, "no-store");
  return res;
}

struct TranscriptParts {
  dialog::ConversationState state;
  HistoryPage page;
};

// An audit entry as the transcript shows it: {action, operator, seq, at} and, for an ack,
// {escalation, note?}.
std::string AuditJson(const AuditEntry& a) {
  JsonObject o(a.note.size() + a.by.size() + 96);
  o.String("action", a.action).String("operator", a.by).Int("seq", static_cast<std::int64_t>(a.seq)).Int("at", a.at_ms);
  if (a.escalation != 0) o.Int("escalation", a.escalation);
  if (!a.note.empty()) o.String("note", a.note);
  return o.Done();
}

std::string TranscriptJson(const std::string& id, const TranscriptParts& t, const std::vector<AuditEntry>& audit,
                           ConversationStore& store) {
  std::string escalations = "[";
  for (const auto& e : store.escalations().Unacknowledged()) {
    if (e.conversation != id) continue;
    if (escalations.size() > 1) escalations += ',';
    escalations += EscalationJson(e);
  }
  escalations += ']';
  std::string actions = "[";
  for (const auto& a : audit) {
    if (actions.size() > 1) actions += ',';
    actions += AuditJson(a);
  }
  actions += ']';
  const std::string history = HistoryJson(t.page);
  return JsonObject(history.size() + escalations.size() + actions.size() + 256)
      .String("conversation", id)
      .String("state", t.state.state)
      .String("urgency", knowledge::UrgencyName(t.state.urgency))
      .Strings("red_flags", t.state.flags)
      .String("claimed_by", t.state.claimed_by)
      .String("operator", t.state.operator_name)
      .Raw("history", history)
      .Bool("history_more", t.page.more)
      .Raw("unacknowledged", escalations)
      .Raw("actions", actions)
      .Done();
}

// GET /v1/operator/conversations/ID: the conversation's state, a page of its history and what
// operators did to it (the audit).
void Transcript(const HttpRequest& req, std::string id, ServerContext& context,
                std::function<void(HttpResponse)> respond) {
  std::optional<std::uint64_t> before;
  const std::string_view target(req.target().data(), req.target().size());
  if (const auto q = target.find("?before="); q != std::string_view::npos) {
    const std::string digits(target.substr(q + 8));
    if (digits.empty() || digits.size() > 19 || digits.find_first_not_of("0123456789") != std::string::npos) {
      return respond(JsonError(req, http::status::bad_request, "'before' must be a seq"));
    }
    before = std::stoull(digits);
  }
  auto& store = context.store;
  store.Load(id, [req, id, before, &store, respond = std::move(respond)](Loaded loaded) mutable {
    if (loaded.status == Loaded::Status::kNotFound) {
      return respond(JsonError(req, http::status::not_found, "no such conversation"));
    }
    if (loaded.status == Loaded::Status::kUnavailable) return respond(StoreUnreadable(req));
    auto transcript = std::make_shared<TranscriptParts>();
    transcript->state = std::move(loaded.conversation.state);
    store.History(id, before, kTranscriptTurns,
                  [req, id, &store, transcript, respond = std::move(respond)](std::optional<HistoryPage> page) mutable {
                    if (!page) return respond(StoreUnreadable(req));
                    transcript->page = std::move(*page);
                    store.Audit(id, [req, id, &store, transcript, respond = std::move(respond)](
                                        std::optional<std::vector<AuditEntry>> audit) {
                      if (!audit) return respond(StoreUnreadable(req));
                      auto res = Respond(req, http::status::ok, TranscriptJson(id, *transcript, *audit, store),
                                         "application/json");
                      res.set(http::field::cache_control, "no-store");
                      respond(std::move(res));
                    });
                  });
  });
}

}  // namespace

std::optional<std::string> OperatorOf(const HttpRequest& req, const ServerContext& context) {
  if (context.config.operators.empty()) return std::nullopt;
  if (const auto authorization = req[http::field::authorization]; !authorization.empty()) {
    return context.config.operators.AuthenticateBearer(authorization);  // a wrong token is not a cookie's chance
  }
  return context.sign_ins.Find(req[http::field::cookie]);
}

bool FromOwnOrigin(const HttpRequest& req) {
  return OriginAllowed(req[http::field::origin], req[http::field::host], {});
}

bool IsOperatorApi(std::string_view path) {
  return path == kSessionPath || path.substr(0, kConversationsPath.size()) == kConversationsPath;
}

void ServeOperatorApi(const HttpRequest& req, std::string_view path, ServerContext& context,
                      std::function<void(HttpResponse)> respond) {
  if (context.config.operators.empty()) {
    return respond(Respond(req, http::status::not_found, "not found (the server has no operators)\n", "text/plain"));
  }
  if (!FromOwnOrigin(req)) {
    return respond(Respond(req, http::status::forbidden, "operators sign in on this server's own pages\n", "text/plain"));
  }
  if (path == kSessionPath && req.method() == http::verb::post) return respond(SignIn(req, context));
  const auto name = OperatorOf(req, context);
  if (path == kSessionPath && req.method() == http::verb::delete_) {
    context.sign_ins.Revoke(req[http::field::cookie]);
    auto res = Respond(req, http::status::no_content, "", "text/plain");
    res.set(http::field::set_cookie, OperatorSignIns::ClearCookie(OverTls(req)));
    return respond(std::move(res));
  }
  if (!name) return respond(Unauthorized(req));
  if (path == kSessionPath && req.method() == http::verb::get) {
    auto res = Respond(req, http::status::ok, JsonObject(96).String("operator", *name).Done(), "application/json");
    res.set(http::field::cache_control, "no-store");
    return respond(std::move(res));
  }
  if (path.substr(0, kConversationsPath.size()) == kConversationsPath && req.method() == http::verb::get) {
    const std::string id(path.substr(kConversationsPath.size()));
    if (id.empty() || id.size() > 64) return respond(JsonError(req, http::status::not_found, "no such conversation"));
    return Transcript(req, id, context, std::move(respond));
  }
  auto res = Respond(req, http::status::method_not_allowed, "not allowed\n", "text/plain");
  res.set(http::field::allow, path == kSessionPath ? "GET, POST, DELETE" : "GET");
  respond(std::move(res));
}

}  // namespace backcheck::server
