#include "server/http_session.hpp"

#include <nlohmann/json.hpp>

#include "server/chat_session.hpp"
#include "server/http_responses.hpp"
#include "server/log.hpp"
#include "server/admin_api.hpp"
#include "server/json_writer.hpp"
#include "server/operator_api.hpp"
#include "server/operator_session.hpp"
#include "server/request_checks.hpp"

namespace backcheck::server {
namespace {

constexpr std::size_t kMaxHeaderBytes = 8 * 1024;
constexpr int kPreflightMaxAgeSeconds = 600;

http::status StatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUnknownConversation: return http::status::not_found;
    case ErrorCode::kRateLimited: return http::status::too_many_requests;
    case ErrorCode::kTooManyConversations:
    case ErrorCode::kStoreUnavailable: return http::status::service_unavailable;
    default: return http::status::bad_request;
  }
}

// A request Beast refused while reading it, answered rather than dropped where HTTP has a status.
std::optional<http::status> StatusForReadError(beast::error_code ec) {
  if (ec == http::error::body_limit) return http::status::payload_too_large;
  if (ec == http::error::header_limit) return http::status::request_header_fields_too_large;
  return std::nullopt;
}

}  // namespace

HttpSession::HttpSession(Socket&& socket, ServerContext& context)
    : stream_(std::move(socket)),
      context_(context),
      bucket_(context.config.limits.messages_per_second, context.config.limits.burst) {
  beast::error_code ec;
  const auto endpoint = stream_.socket().remote_endpoint(ec);
  peer_ = ec ? std::string("unknown") : endpoint.address().to_string();
}

HttpSession::~HttpSession() {
  context_.sessions.Remove(registry_id_);
  if (counted_) context_.CloseHttp();
}

void HttpSession::Run() {
  registry_id_ = context_.sessions.Add(weak_from_this());
  counted_ = context_.TryOpenHttp();
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    if (!self->counted_) {  // over --max-http-connections: say so and close
      BACKCHECK_LOG_EVERY(kWarn, "connection_refused", 10).Str("limit", "max_http_connections").Str("answered", "503");
      self->context_.metrics.refused_connections.fetch_add(1, std::memory_order_relaxed);
      http::request<http::string_body> req;
      req.version(11);
      return self->Write(Refuse(req, http::status::service_unavailable, "too many connections\n"));
    }
    self->DoRead();
  });
}

void HttpSession::Shutdown() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] { self->Close(); });
}

void HttpSession::DoRead() {
  parser_.emplace();
  parser_->header_limit(kMaxHeaderBytes);
  parser_->body_limit(context_.config.limits.max_body_bytes);
  // The handshake timeout bounds how long a client may take to send a request.
  stream_.expires_after(context_.config.limits.handshake_timeout);
  http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::OnRead, shared_from_this()));
}

void HttpSession::OnRead(beast::error_code ec, std::size_t) {
  AtBoundary(
      context_.metrics.handler_exceptions,
      [&] {
        if (auto status = StatusForReadError(ec)) {
          http::request<http::string_body> req;
          req.version(11);
          return Write(Refuse(req, *status, std::string(obsolete_reason(*status)) + "\n"));
        }
        if (ec) return Close();  // end of stream, timeout, or a malformed request
        if (context_.stopping) return Close();
        Request req = parser_->release();
        Serve(req);
      },
      [&] {
        BACKCHECK_LOG(kError, "handler_exception").Str("where", "http_connection").Str("answered", "500")
            .Str("metric", "backcheck_handler_exceptions_total");
        http::request<http::string_body> req;
        req.version(11);
        Write(Refuse(req, http::status::internal_server_error, "internal error\n"));
      });
}

void HttpSession::Serve(Request& req) {
  address_ = ClientAddress(peer_, req["X-Forwarded-For"], context_.config.trusted_proxies);
  head_ = req.method() == http::verb::head;
  const std::string_view path = TargetPath(req.target());
  const bool browser_api = websocket::is_upgrade(req) || path == "/v1/messages";
  if (browser_api && !OriginAllowed(req[http::field::origin], req[http::field::host], context_.config.allowed_origins)) {
    context_.metrics.refused_origins.fetch_add(1, std::memory_order_relaxed);
    BACKCHECK_LOG_EVERY(kWarn, "origin_refused", 10).Str("answered", "403");  // not the Origin: anyone's words
    return Write(Refuse(req, http::status::forbidden, "this origin may not use this server (see --allowed-origins)\n"));
  }
  if (websocket::is_upgrade(req)) return Upgrade(req, path);
  if (IsOperatorApi(path) || IsAdminApi(path)) return ServeOperator(req, path);
  if (path == "/v1/messages" && req.method() == http::verb::post) return PostMessage(req);
  if (path == "/v1/messages" && req.method() == http::verb::options) {  // a CORS preflight
    auto res = Respond(req, http::status::no_content, "", "text/plain");
    AllowOrigin(req, res);
    res.set(http::field::access_control_allow_methods, "POST");
    res.set(http::field::access_control_allow_headers, "Content-Type, Idempotency-Key");
    res.set(http::field::access_control_max_age, std::to_string(kPreflightMaxAgeSeconds));
    return Write(std::move(res));
  }
  Write(Handle(req));
}

void HttpSession::Upgrade(Request& req, std::string_view path) {
  const bool chat = path == "/v1/chat";
  const bool operators = path == "/v1/operator" && !context_.config.operators.empty();
  if (!chat && !operators) return Write(Refuse(req, http::status::not_found, "not found\n"));
  if (!ValidWebSocketKey(req[http::field::sec_websocket_key])) {
    return Write(Refuse(req, http::status::bad_request, "Sec-WebSocket-Key must be the base64 of 16 bytes\n"));
  }
  if (operators) {
    // The console runs on this server's pages only: a page elsewhere cannot use a signed-in
    // operator's cookie, whatever --allowed-origins lets the widget do.
    if (!FromOwnOrigin(req)) {
      context_.metrics.refused_origins.fetch_add(1, std::memory_order_relaxed);
      BACKCHECK_LOG_EVERY(kWarn, "origin_refused", 10).Str("answered", "403").Str("path", "/v1/operator");
      return Write(Refuse(req, http::status::forbidden, "operators connect from this server's own pages\n"));
    }
    auto name = OperatorOf(req, context_);
    if (!name) {
      BACKCHECK_LOG_EVERY(kWarn, "operator_refused", 10).Str("answered", "401");  // never the token
      auto res = Refuse(req, http::status::unauthorized, "a valid operator token or sign-in is required\n");
      res.set(http::field::www_authenticate, "Bearer");
      return Write(std::move(res));
    }
    BACKCHECK_LOG(kInfo, "operator_connected").Str("operator", *name);
    std::make_shared<OperatorSession>(stream_.release_socket(), context_, std::move(*name))->Run(std::move(req));
    return;
  }
  // A bridge names itself with a bearer token; a wrong one is refused, not served anonymously.
  std::optional<std::string> bridge;
  if (const auto authorization = req[http::field::authorization]; BridgeTokens::IsBearer(authorization)) {
    bridge = context_.config.bridges.Authenticate(authorization);
    if (!bridge) {
      auto res = Refuse(req, http::status::unauthorized,
                        context_.config.bridges.empty() ? "this server has no bridge tokens (--bridge-tokens)\n"
                                                        : "unknown bridge token\n");
      res.set(http::field::www_authenticate, "Bearer");
      return Write(std::move(res));
    }
  }
  if (!context_.addresses.TryOpenConnection(address_)) {
    BACKCHECK_LOG_EVERY(kWarn, "connection_refused", 10).Str("limit", "max_connections_per_ip").Str("answered", "429");
    context_.metrics.refused_connections.fetch_add(1, std::memory_order_relaxed);
    return Write(Refuse(req, http::status::too_many_requests, "too many connections from your address\n"));
  }
  if (!context_.TryOpenConnection()) {
    context_.addresses.CloseConnection(address_);
    BACKCHECK_LOG_EVERY(kWarn, "connection_refused", 10).Str("limit", "max_connections").Str("answered", "503");
    context_.metrics.refused_connections.fetch_add(1, std::memory_order_relaxed);
    return Write(Refuse(req, http::status::service_unavailable, "too many connections\n"));
  }
  std::make_shared<ChatSession>(stream_.release_socket(), context_, address_, std::move(bridge))->Run(std::move(req));
}

http::response<http::string_body> HttpSession::Handle(const Request& req) {
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = TargetPath(target);
  if (path == "/v1/messages") {  // POST is answered by PostMessage, once the turn is durable
    auto res = Respond(req, http::status::method_not_allowed, "use POST\n", "text/plain");
    res.set(http::field::allow, "POST, OPTIONS");
    return res;
  }
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    auto res = Respond(req, http::status::method_not_allowed, "use GET\n", "text/plain");
    res.set(http::field::allow, "GET, HEAD");
    return res;
  }
  if (path == "/healthz") {  // alive and able to keep what it is told, and with which knowledge
    const bool healthy = context_.service.StoreHealthy();
    return Respond(req, healthy ? http::status::ok : http::status::service_unavailable,
                   JsonObject(160)
                       .String("status", healthy ? "ok" : "store failing")
                       .String("knowledge_version", context_.service.engine()->kb().version)
                       .Int("knowledge_reloads", static_cast<std::int64_t>(context_.metrics.reloads_done.load()))
                       .Int("knowledge_reloads_refused",
                            static_cast<std::int64_t>(context_.metrics.reloads_refused.load()))
                       .Done(),
                   "application/json");
  }
  if (path == "/readyz") {  // able to take new conversations
    const std::string reason = context_.NotReadyReason();
    if (!reason.empty()) return Respond(req, http::status::service_unavailable, reason + "\n", "text/plain");
    return Respond(req, http::status::ok, "ready\n", "text/plain");
  }
  if (path == "/metrics") {
    context_.metrics.store_healthy.store(context_.service.StoreHealthy());
    Metrics::Escalations escalations;
    auto& log = context_.store.escalations();
    escalations.unacknowledged = log.UnacknowledgedCount();
    // Ids grow with time, so the lowest unacknowledged id is the oldest (give or take a retry).
    if (const auto oldest = log.Unacknowledged(0, 1); !oldest.empty()) {
      escalations.oldest_age_seconds = std::max(0.0, static_cast<double>(UnixMillis() - oldest.front().at_ms) / 1000.0);
    }
    const auto engine = context_.service.engine();
    return Respond(req, http::status::ok,
                   context_.metrics.Render(context_.service.Count(), engine->detector().SetFallbacks(), escalations,
                                           engine->kb().version),
                   "text/plain; version=0.0.4; charset=utf-8");
  }
  // The operators' console (web/operator.html) at its short address; it signs in by itself.
  const std::string_view file_target = path == "/operator" ? std::string_view("/operator.html") : target;
  if (auto file = context_.files.Get(file_target)) {
    auto res = Respond(req, http::status::ok, std::move(file->body), file->content_type);
    // The console shows what people wrote: never framed by another page, never cached.
    if (path == "/operator" || path == "/operator.html") {
      res.set("Content-Security-Policy", "frame-ancestors 'none'");
      res.set(http::field::cache_control, "no-store");
    }
    return res;
  }
  return Respond(req, http::status::not_found, "not found\n", "text/plain");
}

void HttpSession::AllowOrigin(const Request& req, Response& res) const {
  const std::string_view origin = req[http::field::origin];
  if (origin.empty()) return;  // not a browser's cross-origin request
  res.set(http::field::access_control_allow_origin, origin);  // Serve checked it is allowed
  res.set(http::field::vary, "Origin");
}

void HttpSession::PostMessage(const Request& req) {
  const auto received = Clock::now();
  std::string_view text_for_guidance;
  auto fail = [&](Error error) {
    context_.metrics.ErrorSent(error.code);
    if (error.code == ErrorCode::kRateLimited || error.code == ErrorCode::kTextTooLong ||
        error.code == ErrorCode::kTooManyConversations) {  // the code only: never the body
      BACKCHECK_LOG_EVERY(kWarn, "limit_hit", 10).Str("code", ErrorCodeName(error.code)).Str("kind", "http");
    } else {
      BACKCHECK_LOG(kDebug, "error_sent").Str("code", ErrorCodeName(error.code)).Str("kind", "http");
    }
    if (!text_for_guidance.empty()) error = context_.service.WithGuidance(std::move(error), text_for_guidance);
    auto res = ErrorResponse(req, StatusFor(error.code), error);
    AllowOrigin(req, res);
    Write(std::move(res));
  };
  // A form or text/plain POST needs no CORS preflight, so a page elsewhere could send one from
  // its visitors' browsers; JSON only.
  if (!IsJsonContentType(req[http::field::content_type])) {
    auto res = Refuse(req, http::status::unsupported_media_type, "send Content-Type: application/json\n");
    AllowOrigin(req, res);
    return Write(std::move(res));
  }
  auto body = nlohmann::json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return fail(Error{ErrorCode::kBadJson, "the body is not valid JSON"});
  if (!body.is_object()) return fail(Error{ErrorCode::kBadJson, "the body must be a JSON object"});
  auto text = body.find("text");
  if (text == body.end() || !text->is_string() ||
      text->get_ref<const std::string&>().find_first_not_of(" \t\r\n") == std::string::npos) {
    return fail(Error{ErrorCode::kBadRequest, "'text' must be a non-empty string"});
  }
  const std::string& message = text->get_ref<const std::string&>();
  text_for_guidance = message;  // every error from here on carries the guidance if it raises a flag
  if (!bucket_.TryTake(received) || !context_.addresses.TryMessage(address_, received)) {
    return fail(Error{ErrorCode::kRateLimited, "too many messages; slow down"});
  }
  if (auto error = context_.service.CheckText(message)) return fail(std::move(*error));
  // Idempotency-Key: the client's id of this message (a repeated one gets the stored reply).
  std::optional<std::string> client_id;
  if (auto header = req.find("Idempotency-Key"); header != req.end()) {
    const auto value = header->value();
    if (value.empty() || value.size() > kMaxMessageIdBytes) {
      return fail(Error{ErrorCode::kBadRequest, "Idempotency-Key must be 1 to " +
                                                    std::to_string(kMaxMessageIdBytes) + " bytes"});
    }
    if (auto c = body.find("conversation"); c == body.end() || c->is_null()) {
      // A message without a conversation starts a new one each time: a retry would start another.
      return fail(Error{ErrorCode::kBadRequest,
                        "Idempotency-Key needs 'conversation': send the first message without the header, "
                        "then the conversation id it answers with"});
    }
    client_id.emplace(value);
  }
  std::string conversation;
  bool implicit = false;  // started for this message just now
  if (auto c = body.find("conversation"); c != body.end() && !c->is_null()) {
    if (!c->is_string() || c->get_ref<const std::string&>().empty()) {
      return fail(Error{ErrorCode::kBadRequest, "'conversation' must be a non-empty string"});
    }
    conversation = c->get<std::string>();
  } else {
    if (!context_.addresses.TryNewConversation(address_)) {
      return fail(Error{ErrorCode::kRateLimited, "too many new conversations from your address; try again in a minute"});
    }
    // The message queues behind the creation; a failed creation fails it too (the turn's
    // completion is the one that answers).
    // The completion may run later, on the store's thread (the creation's commit): what it
    // leaves is shared, and read here only when the start was refused at once.
    auto refused = std::make_shared<std::optional<Error>>();
    conversation = context_.service.Start(std::nullopt, std::nullopt, [refused](auto result) {
      if (auto* error = std::get_if<Error>(&result)) *refused = *error;
    });
    if (conversation.empty()) return fail(refused->value_or(context_.service.StoreFailure(std::nullopt)));
    implicit = true;
  }
  // The response is written once the store has the turn, on this connection's strand.
  context_.service.Message(
      conversation, message, received,
      [self = shared_from_this(), implicit, version = req.version(), keep_alive = req.keep_alive(),
       origin = std::string(req[http::field::origin])](std::variant<ConversationService::Replied, Error> result) {
        asio::post(self->stream_.get_executor(), [self, implicit, version, keep_alive, origin = std::move(origin),
                                                  result = std::move(result)]() mutable {
          Request original{http::verb::post, "/v1/messages", version};
          original.keep_alive(keep_alive);
          if (!origin.empty()) original.set(http::field::origin, origin);
          if (auto* error = std::get_if<Error>(&result)) {
            // The one this message just started is gone only if the store failed to create it.
            if (implicit && error->code == ErrorCode::kUnknownConversation) {
              *error = self->context_.service.StoreFailure(error->guidance);
            }
            self->context_.metrics.ErrorSent(error->code);
            auto res = ErrorResponse(original, StatusFor(error->code), *error);
            self->AllowOrigin(original, res);
            return self->Write(std::move(res));
          }
          const auto& replied = std::get<ConversationService::Replied>(result);
          ReplyEcho echo;
          echo.duplicate = replied.duplicate;
          auto res = Respond(original, http::status::ok,
                             ReplyJson(replied.conversation, replied.seq, std::nullopt, replied.reply, false, echo),
                             "application/json");
          if (replied.duplicate) res.set("Idempotent-Replayed", "true");
          self->AllowOrigin(original, res);
          self->Write(std::move(res));
        });
      },
      std::move(client_id));
}

void HttpSession::ServeOperator(const Request& req, std::string_view path) {
  auto respond = [self = shared_from_this()](Response res) {
    asio::post(self->stream_.get_executor(), [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
  };
  if (IsAdminApi(path)) return ServeAdminApi(req, context_, std::move(respond));
  ServeOperatorApi(req, path, context_, std::move(respond));
}

void HttpSession::Write(Response&& res) {
  const bool close = !res.keep_alive();
  if (head_) res.body().clear();  // the headers (Content-Length included) are the GET's; no body
  head_ = false;
  response_ = std::make_shared<Response>(std::move(res));
  http::async_write(stream_, *response_, beast::bind_front_handler(&HttpSession::OnWrite, shared_from_this(), close));
}

void HttpSession::OnWrite(bool close, beast::error_code ec, std::size_t) {
  response_.reset();
  if (ec || close || context_.stopping) return Close();
  DoRead();
}

void HttpSession::Close() {
  if (!stream_.socket().is_open()) return;  // closed already, or handed to a ChatSession
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.close();
}

}  // namespace backcheck::server
