// The server: an io_context run by N threads, a listener, the conversation service, and a
// graceful shutdown on SIGINT/SIGTERM (stop accepting, close every WebSocket with 1001, finish
// writes, return within 5 s).
#pragma once

#include <memory>

#include "dialog/engine.hpp"
#include "server/config.hpp"

namespace backcheck::server {

// Binds, prints "listening on http://HOST:PORT" to stdout, serves until a signal. Returns the
// process exit status (0 after a graceful shutdown). Throws on a bind failure.
int RunServer(const ServerConfig& config, const dialog::Engine& engine);

}  // namespace backcheck::server
