// build/chat-server: the Backcheck WebSocket + HTTP server. See README "Running the server".
#include <sys/resource.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

#include "knowledge/loader.hpp"
#include "server/beast.hpp"
#include "server/config.hpp"
#include "server/config_file.hpp"
#include "server/request_checks.hpp"
#include "server/log.hpp"
#include "server/server.hpp"
#include "common/paths.hpp"
#include "common/version.hpp"

namespace {

// A missing data directory is created 0700 (umask 077). An existing one is used as it is: its
// mode is the administrator's (it may be a shared mount or a symlink to one), except that a
// world-writable folder is refused, since anyone could then replace the database.
std::optional<std::string> PrepareDataDir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return ec.message();
  }
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) return std::string(std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) return std::string("not a directory");
  if (st.st_mode & S_IWOTH) return std::string("it is world-writable; give it mode 0700 (chmod 700 ") + dir + ")";
  return std::nullopt;
}

// Each WebSocket is a descriptor: the soft limit (often 1024) would cap connections far below
// --max-connections. Raised to the hard limit, which is the administrator's.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// --new-operator NAME: the token goes to the operator (once: it is not kept), the line to the file.
int PrintNewOperator(const std::string& name) {
  try {
    const auto made = backcheck::server::OperatorAccounts::Make(name);
    std::cout << "token for " << name << " (give it to them; it is not stored): " << made.token << "\n"
              << "line for the --operators file: " << made.line << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "chat-server: --new-operator " << e.what() << "\n";
    return 2;
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace backcheck;
  server::ServerConfig config;
  auto& limits = config.limits;
  std::int64_t expiry = limits.conversation_expiry.count(), handshake = limits.handshake_timeout.count(),
               idle = limits.idle_timeout.count(), send = limits.send_timeout.count(),
               empty_expiry = limits.empty_conversation_expiry.count(),
               silent = limits.max_idle_without_message.count();
  std::string trusted_proxies, allowed_origins;
  std::string bridge_tokens_file, operators_file, new_operator;
  double operator_session_hours = 12;

  CLI::App app{"Backcheck chat server: protocol v1 over WebSocket at /v1/chat, HTTP on the same port"};
  app.add_option("--host", config.host, "address to listen on")->capture_default_str();
  app.add_option("--port", config.port, "port to listen on; 0 picks a free one")->capture_default_str();
  app.add_option("--threads", config.threads, "I/O threads; 0 = one per core")->capture_default_str();
  app.add_option("--data-dir", config.data_dir, "where conversations are kept (created 0700)")->capture_default_str();
  app.add_option("--store", config.store,
                 "sqlite: durable, in --data-dir/backcheck.db, one server; postgres: durable, in --database-url, "
                 "any number of servers; memory: lost on restart")
      ->capture_default_str()->check(CLI::IsMember({"sqlite", "postgres", "memory"}));
  app.add_option("--database-url", config.database_url,
                 "PostgreSQL connection URI for --store postgres (postgresql://user@host/db); or set "
                 "BACKCHECK_DATABASE_URL, which keeps a password out of the process list");
  app.add_option("--commit-delay-us", config.commit_delay_us,
                 "under load, microseconds the durable store waits before a commit so that it carries more "
                 "turns (less CPU and disk per reply; 0: never waits)")
      ->capture_default_str()->check(CLI::Range(0, 100000));
  // Unset, --kb and --web are found at run time (common/paths.hpp): ../share/backcheck/ next to the
  // binary once installed, the source tree's folders in a build tree; --help shows what that gives.
  app.add_option("--kb", config.kb_dir, "knowledge base folder (article.txt and data/)")
      ->default_str(common::DescribeDefault("knowledge"));
  app.add_option("--web", config.web_dir, "folder of the widget's static files (must exist)")
      ->default_str(common::DescribeDefault("web"));
  app.set_version_flag("--version", std::string("chat-server ") + common::kVersion + " (git " + common::kGitRevision + ")",
                       "print the version and git revision, then exit");
  app.add_option("--max-connections", limits.max_connections, "open WebSockets in all (HTTP 503 past it)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-frame-bytes", limits.max_frame_bytes, "largest WebSocket frame (bigger: close 1009)")
      ->capture_default_str()->check(CLI::Range(64, 1 << 24));
  app.add_option("--max-text-chars", limits.max_text_chars, "longest message, in characters")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--rate", limits.messages_per_second, "messages per second per connection")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--burst", limits.burst, "messages a connection may send at once")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-conversations-per-connection", limits.max_conversations_per_connection,
                 "conversations on one connection")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-conversations", limits.max_conversations, "conversations held in all")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--conversation-expiry", expiry, "seconds a conversation stays resumable after its last message")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--handshake-timeout", handshake, "seconds to complete an HTTP request or WebSocket handshake")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--idle-timeout", idle, "seconds a WebSocket may stay silent (pings keep live clients)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-body-bytes", limits.max_body_bytes, "largest HTTP request body")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-queued-frames", limits.max_queued_frames,
                 "replies waiting for a client; when full the server stops reading from it")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--send-timeout", send, "seconds a client may leave a full queue of replies unread before it is dropped")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-connections-per-ip", limits.max_connections_per_ip,
                 "open WebSockets per client address (HTTP 429 past it)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-http-connections", limits.max_http_connections,
                 "plain HTTP connections open in all (503 past it)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--new-conversations-per-minute", limits.new_conversations_per_minute,
                 "new conversations per client address per minute (rate_limited past it)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--ip-rate", limits.ip_messages_per_second, "messages per second per client address, all its connections")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--ip-burst", limits.ip_burst, "messages a client address may send at once")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--global-rate", limits.global_messages_per_second, "messages per second for the whole server")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--trusted-proxies", trusted_proxies,
                 "comma-separated proxy addresses whose X-Forwarded-For names the client")->capture_default_str();
  app.add_option("--allowed-origins", allowed_origins,
                 "comma-separated browser origins (https://site.example) besides the server's own, or *")
      ->capture_default_str();
  app.add_option("--empty-conversation-expiry", empty_expiry, "seconds a conversation without a message stays")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-queued-bytes", limits.max_queued_bytes,
                 "bytes of frames waiting for one client; past it the server stops reading from it")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-cached-conversations", limits.max_cached_conversations,
                 "active conversations kept in memory (others are loaded from the store when used)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--bridge-tokens", bridge_tokens_file,
                 "file of 'name token' lines (mode 600): clients sending Authorization: Bearer <token> on /v1/chat "
                 "are bridges, limited per conversation");
  app.add_option("--bridge-rate", limits.bridge_messages_per_second, "messages per second per conversation of a bridge")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--bridge-burst", limits.bridge_burst, "messages one conversation of a bridge may send at once")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--bridge-new-conversations-per-second", limits.bridge_new_conversations_per_second,
                 "new conversations per second per bridge connection")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-conversations-per-bridge-connection", limits.max_conversations_per_bridge_connection,
                 "conversations one bridge connection may hold (an anonymous one: --max-conversations-per-connection)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-pending-per-conversation", limits.max_pending_per_conversation,
                 "messages of one conversation waiting their turn (past it: rate_limited)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-history-turns", limits.max_history_turns, "turns in started.history (history_before pages back)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--max-idle-without-message", silent,
                 "seconds a chat WebSocket may send nothing (answering pings does not count) before it is closed")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--emergency-number", config.emergency_number,
                 "the local emergency number (e.g. 112, 911, 999): started.emergency_number, so the widget's "
                 "emergency banner offers to call it; unset, the banner says to call the local number")
      ->check([](const std::string& n) {
        const bool ok = !n.empty() && n.size() <= 16 && n.find_first_not_of("+0123456789") == std::string::npos &&
                        n.find('+', 1) == std::string::npos;
        return ok ? std::string() : std::string("digits (and a leading +), at most 16");
      });
  app.add_flag("--review", config.review,
               "keep the messages the assistant could not answer (a fallback, or retrieval only) for "
               "`backcheck review`: their text (health data), time, flow state, retrieval score and intent, "
               "for --review-days; off by default");
  app.add_option("--review-days", config.review_days, "days a --review entry is kept, then purged")
      ->capture_default_str()->check(CLI::Range(1, 3650));
  app.add_option("--escalation-webhook", config.escalation_webhook,
                 "POST each escalation here (http:// or https://), signed with BACKCHECK_WEBHOOK_SECRET, retried "
                 "with back-off from the store until a 2xx (docs/webhook.md); needs --store sqlite or postgres");
  app.add_option("--operators", operators_file,
                 "file of 'name sha256:HASH' lines (not writable by others): the named operators of /v1/operator "
                 "and the console at /operator (make a line with --new-operator NAME)");
  app.add_option("--new-operator", new_operator,
                 "print a new operator token for NAME and the line to add to the --operators file, then exit");
  app.add_option("--operator-session-hours", operator_session_hours,
                 "how long an operator's browser sign-in lasts (sessions also end when the server restarts)")
      ->capture_default_str()->check(CLI::Range(0.01, 24.0 * 30));
  app.add_option("--max-operator-sessions", config.max_operator_sessions,
                 "browser sign-ins kept at once (past it the one that expires soonest ends)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  std::string log_level = "info";
  app.add_option("--log-level", log_level,
                 "least severe log lines written to stderr, one JSON object a line (README \"Logs\"); trace also "
                 "logs every frame, with what people write: never in production")
      ->capture_default_str()->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.footer("Environment: CHAT_OPERATOR_TOKEN is one unnamed operator's token (shown as \"operator\"), the "
             "quick way to enable /v1/operator; --operators names each operator. Programs send "
             "Authorization: Bearer <token>; browsers sign in at /operator.");
  server::ConfigFile config_file(app);  // --config FILE, --print-config: after every other option
  CLI11_PARSE(app, argc, argv);
  if (const auto status = config_file.Apply()) return *status;  // the file refused (2), or printed (0)
  log::SetLevel(log::ParseLevel(log_level).value_or(log::Level::kInfo));
  if (!new_operator.empty()) return PrintNewOperator(new_operator);
  if (!operators_file.empty()) {
    try {
      config.operators = server::OperatorAccounts::Load(operators_file);
    } catch (const server::OperatorAccountsError& e) {
      std::cerr << "chat-server: --operators " << e.what() << "\n";
      return 2;
    }
  }
  if (const char* token = std::getenv("CHAT_OPERATOR_TOKEN")) config.operators.AddUnnamed(token);
  if (!config.escalation_webhook.empty()) {
    const char* secret = std::getenv("BACKCHECK_WEBHOOK_SECRET");
    if (!secret || std::strlen(secret) < 16) {
      std::cerr << "chat-server: --escalation-webhook needs BACKCHECK_WEBHOOK_SECRET in the environment (at least 16 "
                   "characters; e.g. openssl rand -hex 32), the key receivers check the signature with\n";
      return 2;
    }
    config.webhook_secret = secret;
  }
  config.operator_session_ttl = std::chrono::seconds(static_cast<std::int64_t>(operator_session_hours * 3600));
  if (const char* url = std::getenv("BACKCHECK_DATABASE_URL"); url && config.database_url.empty()) {
    config.database_url = url;
  }
  if (!bridge_tokens_file.empty()) {
    try {
      config.bridges = server::BridgeTokens::Load(bridge_tokens_file);
    } catch (const server::BridgeTokensError& e) {
      std::cerr << "chat-server: --bridge-tokens " << e.what() << "\n";
      return 2;
    }
  }
  if (config.store == "postgres" && config.database_url.empty()) {
    std::cerr << "chat-server: --store postgres needs --database-url (or BACKCHECK_DATABASE_URL)\n";
    return 2;
  }
  limits.conversation_expiry = std::chrono::seconds(expiry);
  limits.handshake_timeout = std::chrono::seconds(handshake);
  limits.idle_timeout = std::chrono::seconds(idle);
  limits.send_timeout = std::chrono::seconds(send);
  limits.empty_conversation_expiry = std::chrono::seconds(empty_expiry);
  limits.max_idle_without_message = std::chrono::seconds(silent);
  config.trusted_proxies = server::SplitList(trusted_proxies);
  config.allowed_origins = server::SplitList(allowed_origins);

  try {
    if (config.kb_dir.empty()) config.kb_dir = common::RequireResource("knowledge", "--kb DIR");
    if (config.web_dir.empty()) config.web_dir = common::RequireResource("web", "--web DIR");
  } catch (const common::ResourceError& e) {
    std::cerr << "chat-server: " << e.what() << "\n";
    return 2;
  }
  if (std::error_code ec; !std::filesystem::is_directory(config.web_dir, ec)) {
    std::cerr << "chat-server: --web " << config.web_dir << ": not a folder (the widget's files: index.html, "
              << "widget.js...)\n";
    return 2;
  }
  std::shared_ptr<const knowledge::KnowledgeBase> kb;
  try {
    kb = knowledge::LoadKnowledgeBase(config.kb_dir);
  } catch (const knowledge::KnowledgeError& e) {
    std::cerr << "chat-server: knowledge base " << config.kb_dir << " refused: " << e.what() << "\n";
    return 2;
  }
  ::umask(077);  // the database holds what people wrote: files and folders for this user only
  if (auto problem = PrepareDataDir(config.data_dir)) {
    std::cerr << "chat-server: cannot use data directory " << config.data_dir << ": " << *problem << "\n";
    return 2;
  }
  RaiseDescriptorLimit();
  BACKCHECK_LOG(kInfo, "starting").Str("version", common::kVersion).Str("git", common::kGitRevision)
      .Str("store", config.store).Str("log_level", log_level);
  if (log::Enabled(log::Level::kTrace)) {
    BACKCHECK_LOG(kWarn, "trace_logging").Str("warning", "--log-level trace logs every frame, with what people "
                                                         "write and health data: never use it in production");
  }
  dialog::Engine engine(kb);
  try {
    return server::RunServer(config, engine);
  } catch (const std::exception& e) {  // a refused database, an address in use...
    std::cerr << "chat-server: " << e.what() << "\n";
    return 1;
  }
}
