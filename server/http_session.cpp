#include "server/http_session.hpp"

#include <nlohmann/json.hpp>

#include "server/chat_session.hpp"
#include "server/operator_session.hpp"

namespace backcheck::server {
namespace {

constexpr std::size_t kMaxHeaderBytes = 8 * 1024;

http::response<http::string_body> Respond(const http::request<http::string_body>& req, http::status status,
                                          std::string body, std::string content_type) {
  http::response<http::string_body> res{status, req.version()};
  res.set(http::field::server, "backcheck");
  res.set(http::field::content_type, content_type);
  res.set("X-Content-Type-Options", "nosniff");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

http::response<http::string_body> ErrorResponse(const http::request<http::string_body>& req, http::status status,
                                                ErrorCode code, std::string message) {
  return Respond(req, status, ErrorJson(Error{code, std::move(message)}, std::nullopt), "application/json");
}

http::status StatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUnknownConversation: return http::status::not_found;
    case ErrorCode::kRateLimited: return http::status::too_many_requests;
    case ErrorCode::kTooManyConversations: return http::status::service_unavailable;
    default: return http::status::bad_request;
  }
}

}  // namespace

HttpSession::HttpSession(Socket&& socket, ServerContext& context)
    : stream_(std::move(socket)),
      context_(context),
      bucket_(context.config.limits.messages_per_second, context.config.limits.burst) {}

HttpSession::~HttpSession() { context_.sessions.Remove(registry_id_); }

void HttpSession::Run() {
  registry_id_ = context_.sessions.Add(weak_from_this());
  asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::DoRead, shared_from_this()));
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
  if (ec == http::error::body_limit) {
    http::request<http::string_body> req;
    req.version(11);
    req.keep_alive(false);
    return Write(Respond(req, http::status::payload_too_large, "{\"type\":\"error\",\"code\":\"bad_request\",\"message\":\"the body is too large\"}",
                         "application/json"));
  }
  if (ec) return Close();  // end of stream, timeout, or a malformed request
  if (context_.stopping) return Close();

  http::request<http::string_body> req = parser_->release();
  if (websocket::is_upgrade(req)) {
    const auto target = req.target();
    if (target == "/v1/chat") {
      if (!context_.TryOpenConnection()) {
        auto res = Respond(req, http::status::service_unavailable, "too many connections\n", "text/plain");
        res.keep_alive(false);
        return Write(std::move(res));
      }
      std::make_shared<ChatSession>(stream_.release_socket(), context_)->Run(std::move(req));
      return;
    }
    if (target == "/v1/operator" && !context_.config.operator_token.empty()) {
      if (!OperatorAuthorized(req[http::field::authorization], context_.config.operator_token)) {
        auto res = Respond(req, http::status::unauthorized, "a valid operator token is required\n", "text/plain");
        res.set(http::field::www_authenticate, "Bearer");
        res.keep_alive(false);
        return Write(std::move(res));
      }
      std::make_shared<OperatorSession>(stream_.release_socket(), context_)->Run(std::move(req));
      return;
    }
    auto res = Respond(req, http::status::not_found, "not found\n", "text/plain");
    res.keep_alive(false);
    return Write(std::move(res));
  }
  if (req.method() == http::verb::post && req.target().substr(0, req.target().find('?')) == "/v1/messages") {
    return PostMessage(req);
  }
  Write(Handle(req));
}

http::response<http::string_body> HttpSession::Handle(const http::request<http::string_body>& req) {
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/v1/messages") {  // POST is answered by PostMessage, once the turn is durable
    auto res = Respond(req, http::status::method_not_allowed, "use POST\n", "text/plain");
    res.set(http::field::allow, "POST");
    return res;
  }
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    auto res = Respond(req, http::status::method_not_allowed, "use GET\n", "text/plain");
    res.set(http::field::allow, "GET, HEAD");
    return res;
  }
  if (path == "/healthz") return Respond(req, http::status::ok, "ok\n", "text/plain");
  if (path == "/metrics") {
    return Respond(req, http::status::ok, context_.metrics.Render(context_.service.Count()),
                   "text/plain; version=0.0.4; charset=utf-8");
  }
  if (auto file = context_.files.Get(target)) {
    auto res = Respond(req, http::status::ok, std::move(file->body), file->content_type);
    if (req.method() == http::verb::head) res.body().clear();
    return res;
  }
  return Respond(req, http::status::not_found, "not found\n", "text/plain");
}

void HttpSession::PostMessage(const http::request<http::string_body>& req) {
  const auto received = Clock::now();
  auto fail = [&](ErrorCode code, std::string message) {
    context_.metrics.ErrorSent(code);
    Write(ErrorResponse(req, StatusFor(code), code, std::move(message)));
  };
  if (!bucket_.TryTake()) return fail(ErrorCode::kRateLimited, "too many messages; slow down");
  auto body = nlohmann::json::parse(req.body(), nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return fail(ErrorCode::kBadJson, "the body is not valid JSON");
  if (!body.is_object()) return fail(ErrorCode::kBadJson, "the body must be a JSON object");
  auto text = body.find("text");
  if (text == body.end() || !text->is_string() ||
      text->get_ref<const std::string&>().find_first_not_of(" \t\r\n") == std::string::npos) {
    return fail(ErrorCode::kBadRequest, "'text' must be a non-empty string");
  }
  if (auto error = context_.service.CheckText(text->get_ref<const std::string&>())) {
    return fail(error->code, std::move(error->message));
  }
  std::string conversation;
  if (auto c = body.find("conversation"); c != body.end() && !c->is_null()) {
    if (!c->is_string() || c->get_ref<const std::string&>().empty()) {
      return fail(ErrorCode::kBadRequest, "'conversation' must be a non-empty string");
    }
    conversation = c->get<std::string>();
  } else {
    // The creation is made durable before the turn (the store keeps order); the turn's
    // completion is the one that answers.
    auto started = context_.service.Start(std::nullopt, [](bool) {});
    if (auto* error = std::get_if<Error>(&started)) return fail(error->code, std::move(error->message));
    conversation = std::get<ConversationService::Started>(started).conversation;
  }
  // The response is answered once the store has the turn; it waits on this connection's strand.
  // The completion is posted, so the response below is filled in before it runs.
  auto pending = std::make_shared<http::response<http::string_body>>();
  auto result = context_.service.Message(conversation, text->get_ref<const std::string&>(), received,
                                         [self = shared_from_this(), pending](bool ok) {
                                           asio::post(self->stream_.get_executor(), [self, pending, ok] {
                                             if (!ok) return self->Close();
                                             self->Write(std::move(*pending));
                                           });
                                         });
  if (auto* error = std::get_if<Error>(&result)) return fail(error->code, std::move(error->message));
  auto& replied = std::get<ConversationService::Replied>(result);
  *pending = Respond(req, http::status::ok, ReplyJson(replied.conversation, replied.seq, std::nullopt, replied.reply, false),
                     "application/json");
}

void HttpSession::Write(http::response<http::string_body>&& res) {
  const bool close = !res.keep_alive();
  response_ = std::make_shared<http::response<http::string_body>>(std::move(res));
  http::async_write(stream_, *response_,
                    beast::bind_front_handler(&HttpSession::OnWrite, shared_from_this(), close));
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
