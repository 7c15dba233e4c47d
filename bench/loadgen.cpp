// Load generator for the chat server's WebSocket protocol (v1) and for the echo server, the
// transport floor it is compared against.
//
//   build/bench/loadgen --url ws://127.0.0.1:8080/v1/chat --connections 100 --duration 10
//   build/bench/loadgen --url ws://127.0.0.1:8080/v1/chat --connections 1000 --rate 20000
//   build/bench/loadgen --url ws://127.0.0.1:9000/ --mode echo --connections 100
//   build/bench/loadgen --url ws://127.0.0.1:8080/v1/chat --connections 10000 --idle --duration 30
//   build/bench/loadgen --url ws://127.0.0.1:8080/v1/chat --url ws://127.0.0.1:8081/v1/chat --connections 100
//
// With several --url (several server instances), connection i goes to URL i mod n; the
// latencies of all of them go into one histogram.
//
// Timeline: open every connection (at most 500 connects in flight, so the server's accept queue
// is not flooded; in chat mode each one also starts a conversation and waits for "started"),
// then run --warmup seconds unmeasured, then --duration seconds measured. Only answers that
// arrive in the measured window count, and only their latencies are recorded. Errors are counted
// over the whole run (connect failures happen before the warm-up).
//
// Closed loop (--rate 0): each connection sends, waits for the answer, sends again; latency is
// from the send. Open loop (--rate R): each connection is scheduled to send every
// connections/R seconds (the connections' phases are spread evenly over one interval); latency
// is measured from the SCHEDULED time, so a slow server cannot hide its queueing (no coordinated
// omission). A connection still waiting when its next message is due sends it as soon as the
// answer arrives, still timed from when it was due.
//
// Latencies go into a log-linear histogram (bench/histogram.hpp: 3 significant digits, 1 us to
// 60 s) per I/O thread, merged at the end.
#include <utility>  // before any Boost header: Boost 1.74's Asio under C++20 with g++ 12

#include <boost/asio.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "histogram.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;
using backcheck::bench::Histogram;

constexpr int kMaxConnectsInFlight = 500;
constexpr auto kConnectTimeout = std::chrono::seconds(10);

// A strand per connection with its executor type named (as the servers do): Asio's type-erased
// executor would cost the client an allocation per handler hop, CPU the servers share.
using Strand = asio::strand<asio::io_context::executor_type>;
using Stream = beast::basic_stream<tcp, Strand>;
using Timer = asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>, Strand>;
constexpr auto kSetupDeadline = std::chrono::seconds(120);  // for the whole connect phase
constexpr auto kCloseGrace = std::chrono::seconds(5);

// Realistic messages, cycled through by every connection (each starting at a different one).
const std::vector<std::string> kTexts = {
    "My upper back hurts after rows yesterday",
    "no",
    "What is DOMS?",
    "Should I use ice or heat?",
    "Are there any stretches I can do?",
    "How long will it take to get better?",
    "Which muscles are usually involved?",
    "It feels tight between my shoulder blades",
    "Can I keep training or should I rest?",
    "thanks",
};

struct Options {
  std::vector<std::string> urls;
  int connections = 1;
  double duration = 10;
  double warmup = 2;
  double rate = 0;
  std::string mode = "chat";
  bool idle = false;
  int threads = 1;
  std::string json_file;
  std::string label;
};

struct Target {
  std::string host, port, path;
};

std::optional<Target> ParseUrl(const std::string& url) {
  constexpr std::string_view scheme = "ws://";
  if (url.rfind(scheme, 0) != 0) return std::nullopt;
  std::string rest = url.substr(scheme.size());
  Target t;
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (hostport.empty()) return std::nullopt;
  if (hostport.front() == '[') {  // [v6]:port
    auto close = hostport.find(']');
    if (close == std::string::npos) return std::nullopt;
    t.host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size() && hostport[close + 1] == ':') t.port = hostport.substr(close + 2);
  } else {
    auto colon = hostport.rfind(':');
    t.host = hostport.substr(0, colon);
    if (colon != std::string::npos) t.port = hostport.substr(colon + 1);
  }
  if (t.port.empty()) t.port = "80";
  if (t.host.empty()) return std::nullopt;
  return t;
}

// What each I/O thread counts; merged after the threads are joined.
struct ThreadStats {
  Histogram latency_us;
  std::uint64_t sent = 0;     // messages whose scheduled/send time fell in the measured window
  std::uint64_t answers = 0;  // answers that arrived in the measured window
  std::uint64_t answers_all = 0;
  std::uint64_t unanswered = 0;  // sent in the measured window, no answer by the end (in flight)
  std::uint64_t unsent = 0;      // open loop: due in the measured window but never sent (backlog)
  std::map<std::string, std::uint64_t> errors;
};
thread_local ThreadStats* t_stats = nullptr;

void CountError(const std::string& kind) {
  if (t_stats) ++t_stats->errors[kind];
}

// One server the connections are spread over.
struct Endpoint {
  tcp::resolver::results_type endpoints;
  std::string host_header;
  std::string path;
};

struct Run {
  Options opt;
  asio::io_context& ioc;
  std::vector<Endpoint> targets;  // connection i goes to targets[i % size]
  bool chat = true;
  std::string echo_frame;

  std::atomic<int> next_index{0};
  std::atomic<int> settled{0};  // setup finished: ready or failed
  std::atomic<int> ready{0};
  std::atomic<int> open{0};
  std::atomic<bool> begun{false};
  std::atomic<bool> stopping{false};
  // Written by main before `begun` is set and begin() is posted; read-only afterwards.
  Clock::time_point t0, warm_end, end;

  explicit Run(asio::io_context& c) : ioc(c) {}
};

std::string_view FrameType(std::string_view frame) {
  // The server writes compact JSON; the exact byte sequence "type":" can only be a key (inside a
  // string value every quote is escaped). Fall back to a full parse if it is not there.
  constexpr std::string_view key = "\"type\":\"";
  auto at = frame.find(key);
  if (at == std::string_view::npos) return {};
  auto start = at + key.size();
  auto stop = frame.find('"', start);
  if (stop == std::string_view::npos) return {};
  return frame.substr(start, stop - start);
}

class Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(Run& run, int index)
      : run_(run), index_(index), target_(run.targets[static_cast<std::size_t>(index) % run.targets.size()]),
        ws_(asio::make_strand(run.ioc)), timer_(ws_.get_executor()),
        text_index_(static_cast<std::size_t>(index) % kTexts.size()) {}

  void Start() {
    beast::get_lowest_layer(ws_).expires_after(kConnectTimeout);
    beast::get_lowest_layer(ws_).async_connect(target_.endpoints,
                                               beast::bind_front_handler(&Conn::OnConnect, shared_from_this()));
  }

  // Posted to the strand by main once every connection is set up (or the set-up deadline passed).
  void Begin() {
    if (!ready_ || began_ || run_.opt.idle) return;
    began_ = true;
    if (run_.opt.rate > 0) {
      const double per_conn = run_.opt.rate / run_.opt.connections;
      interval_ = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / per_conn));
      next_ = run_.t0 + interval_ * index_ / run_.opt.connections;
    }
    MaybeSend();
  }

  // Runs on the strand after the end of the run: counts what the measured window owed but never
  // got, so an overloaded server cannot hide its backlog by not answering.
  void Close() {
    if (began_ && !counted_backlog_) {
      counted_backlog_ = true;
      if (waiting_ && sched_ >= run_.warm_end && sched_ < run_.end) ++t_stats->unanswered;
      if (run_.opt.rate > 0) {
        // Due times are next_, next_ + interval_, ...; count those in [warm_end, end).
        auto first = next_;
        if (first < run_.warm_end && interval_ > Clock::duration::zero())
          first += interval_ * ((run_.warm_end - first + interval_ - Clock::duration(1)) / interval_);
        if (first < run_.end && interval_ > Clock::duration::zero())
          t_stats->unsent += static_cast<std::uint64_t>((run_.end - first + interval_ - Clock::duration(1)) / interval_);
      }
    }
    done_ = true;
    timer_.cancel();
    if (!open_ || closing_) return;
    if (writing_) {
      close_after_write_ = true;
      return;
    }
    closing_ = true;
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {});
  }

  auto executor() { return ws_.get_executor(); }

 private:
  void OnConnect(beast::error_code ec, const tcp::endpoint&) {
    if (ec) {
      CountError(ec == beast::error::timeout ? "connect_timeout" : "connect");
      ConnectSlotFree();
      SetupFailed();
      return;
    }
    beast::get_lowest_layer(ws_).expires_never();  // the websocket stream has its own timeouts
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ignored);
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::request_type& req) { req.set(beast::http::field::user_agent, "backcheck-loadgen"); }));
    ws_.async_handshake(response_, target_.host_header, target_.path,
                        beast::bind_front_handler(&Conn::OnHandshake, shared_from_this()));
  }

  void OnHandshake(beast::error_code ec) {
    ConnectSlotFree();
    if (ec) {
      // A refused upgrade (e.g. 503 past --max-connections) is counted by its HTTP status.
      CountError(ec == websocket::error::upgrade_declined ? "handshake:" + std::to_string(response_.result_int())
                                                          : "handshake");
      SetupFailed();
      return;
    }
    open_ = true;
    run_.open.fetch_add(1);
    ws_.text(true);
    DoRead();
    if (run_.chat) {
      Enqueue(R"({"type":"start"})");
    } else {
      SetupReady();
    }
  }

  // This connection's connect/handshake is over; start the next one waiting (keeps at most
  // kMaxConnectsInFlight in flight: each finished one hands its slot on).
  void ConnectSlotFree() {
    if (slot_freed_) return;
    slot_freed_ = true;
    const int next = run_.next_index.fetch_add(1);
    if (next < run_.opt.connections) (*all_)[static_cast<std::size_t>(next)]->Start();
  }

  void SetupReady() {
    if (settled_) return;
    settled_ = true;
    ready_ = true;
    run_.ready.fetch_add(1);
    run_.settled.fetch_add(1);
    if (run_.begun.load()) Begin();
  }
  void SetupFailed() {
    if (settled_) return;
    settled_ = true;
    run_.settled.fetch_add(1);
  }

  void DoRead() { ws_.async_read(buffer_, beast::bind_front_handler(&Conn::OnRead, shared_from_this())); }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) {
      OnClosed(ec);
      return;
    }
    const auto now = Clock::now();
    const auto data = buffer_.cdata();
    std::string_view frame(static_cast<const char*>(data.data()), data.size());
    HandleFrame(frame, now);
    buffer_.consume(buffer_.size());
    DoRead();
  }

  void HandleFrame(std::string_view frame, Clock::time_point now) {
    if (!run_.chat) {
      if (waiting_) Answered(now);
      return;
    }
    std::string_view type = FrameType(frame);
    std::string type_owned;
    json parsed;
    if (type.empty()) {
      parsed = json::parse(frame, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("type") || !parsed["type"].is_string()) {
        CountError("bad_frame");
        return;
      }
      type_owned = parsed["type"].get<std::string>();
      type = type_owned;
    }
    if (type == "reply") {
      if (waiting_) Answered(now);
      return;
    }
    if (parsed.is_null()) parsed = json::parse(frame, nullptr, false);
    if (type == "started") {
      if (parsed.is_object() && parsed.contains("conversation") && parsed["conversation"].is_string()) {
        conversation_ = parsed["conversation"].get<std::string>();
        // Built once: the client should spend as little per message in chat mode as in echo mode.
        for (const auto& text : kTexts)
          frames_.push_back(json{{"type", "message"}, {"conversation", conversation_}, {"text", text}}.dump());
        SetupReady();
      } else {
        CountError("bad_frame");
        SetupFailed();
      }
      return;
    }
    if (type == "error") {
      std::string code = "unknown";
      if (parsed.is_object() && parsed.contains("code") && parsed["code"].is_string())
        code = parsed["code"].get<std::string>();
      CountError("error_frame:" + code);
      if (!settled_) {
        SetupFailed();
      } else if (waiting_) {  // the answer to this message was an error: go on with the next
        waiting_ = false;
        MaybeSend();
      }
      return;
    }
    CountError("unexpected_frame:" + std::string(type));
  }

  void Answered(Clock::time_point now) {
    waiting_ = false;
    ++t_stats->answers_all;
    if (now >= run_.warm_end && now < run_.end) {
      ++t_stats->answers;
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - sched_).count();
      t_stats->latency_us.record(static_cast<std::uint64_t>(us < 0 ? 0 : us));
    }
    MaybeSend();
  }

  void MaybeSend() {
    if (done_ || waiting_ || !open_ || !began_) return;
    const auto now = Clock::now();
    if (now >= run_.end) {
      done_ = true;
      return;
    }
    if (run_.opt.rate <= 0) {
      sched_ = now;
    } else if (now >= next_) {
      sched_ = next_;
      next_ += interval_;
    } else {
      timer_.expires_at(next_);
      timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
        if (!ec) self->MaybeSend();
      });
      return;
    }
    if (sched_ >= run_.warm_end && sched_ < run_.end) ++t_stats->sent;
    waiting_ = true;
    if (run_.chat) {
      Enqueue(frames_[text_index_]);
      text_index_ = (text_index_ + 1) % frames_.size();
    } else {
      Enqueue(run_.echo_frame);
    }
  }

  void Enqueue(std::string frame) {
    out_.push_back(std::move(frame));
    if (!writing_) DoWrite();
  }

  void DoWrite() {
    writing_ = true;
    ws_.async_write(asio::buffer(out_.front()), beast::bind_front_handler(&Conn::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) {
      if (!run_.stopping.load() && ec != websocket::error::closed && ec != asio::error::operation_aborted)
        CountError("write");
      out_.clear();
      return;
    }
    out_.pop_front();
    if (close_after_write_) {
      close_after_write_ = false;
      Close();
      return;
    }
    if (!out_.empty()) DoWrite();
  }

  void OnClosed(beast::error_code ec) {
    if (open_) {
      open_ = false;
      run_.open.fetch_sub(1);
    }
    done_ = true;
    timer_.cancel();
    if (!run_.stopping.load()) {
      if (ec == websocket::error::closed)
        CountError("closed_by_server:" + std::to_string(ws_.reason().code));
      else if (ec == beast::error::timeout)
        CountError("timeout");
      else
        CountError("disconnected");
    }
    SetupFailed();
  }

 public:
  std::vector<std::shared_ptr<Conn>>* all_ = nullptr;

 private:
  Run& run_;
  int index_;
  const Endpoint& target_;
  websocket::stream<Stream> ws_;
  Timer timer_;
  beast::flat_buffer buffer_;
  websocket::response_type response_;
  std::deque<std::string> out_;
  std::string conversation_;
  std::vector<std::string> frames_;  // one message frame per entry of kTexts
  std::size_t text_index_;
  Clock::time_point sched_{};
  Clock::time_point next_{};
  Clock::duration interval_{};
  bool slot_freed_ = false;
  bool settled_ = false;
  bool ready_ = false;
  bool began_ = false;
  bool open_ = false;
  bool waiting_ = false;
  bool writing_ = false;
  bool done_ = false;
  bool closing_ = false;
  bool close_after_write_ = false;
  bool counted_backlog_ = false;
};

void RaiseFileLimit(int connections) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) std::perror("loadgen: setrlimit(RLIMIT_NOFILE)");
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur != RLIM_INFINITY && static_cast<rlim_t>(connections) + 32 > lim.rlim_cur)
    std::cerr << "loadgen: warning: open-file limit " << lim.rlim_cur << " is too low for " << connections
              << " connections (raise the hard limit: ulimit -Hn)\n";
}

std::string Thousands(std::uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

std::string EchoFrame() {
  // A fixed JSON text frame of about 200 bytes, the size of a typical user message frame.
  std::string frame = R"({"type":"message","conversation":"fVSlLTq3oV4zEe7WJvm5zw","text":")";
  const std::string filler = "My upper back hurts after rows yesterday, mostly between the shoulder blades. ";
  while (frame.size() < 180) frame += filler;
  frame.resize(182);
  frame += R"(","ref":"echo-1"})";
  return frame;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"Backcheck load generator: WebSocket chat (protocol v1) or echo load, with latency histograms"};
  app.add_option("--url", opt.urls,
                 "ws://HOST:PORT/PATH, e.g. ws://127.0.0.1:8080/v1/chat; repeated: connection i goes to URL i mod n")
      ->required();
  app.add_option("--connections", opt.connections, "WebSocket connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--duration", opt.duration, "measured seconds (after the warm-up); with --idle, seconds to hold")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1e6));
  app.add_option("--warmup", opt.warmup, "unmeasured seconds before the measurement")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--rate", opt.rate, "messages per second across all connections; 0 = closed loop")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  app.add_option("--mode", opt.mode, "chat (protocol v1) or echo (any text frame back is the answer)")
      ->capture_default_str()
      ->check(CLI::IsMember({"chat", "echo"}));
  app.add_flag("--idle", opt.idle,
               "open the connections (chat: start one conversation each), hold them for --duration without "
               "sending, report how many are open");
  app.add_option("--threads", opt.threads, "client I/O threads")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--json", opt.json_file, "write the results to this file as JSON");
  app.add_option("--label", opt.label, "free text copied into the JSON");
  CLI11_PARSE(app, argc, argv);

  RaiseFileLimit(opt.connections);

  asio::io_context ioc{opt.threads};
  Run run(ioc);
  run.opt = opt;
  run.chat = opt.mode == "chat";
  run.echo_frame = EchoFrame();
  for (const auto& url : opt.urls) {
    auto target = ParseUrl(url);
    if (!target) {
      std::cerr << "loadgen: --url must look like ws://HOST:PORT/PATH (wss is not supported)\n";
      return 2;
    }
    Endpoint e;
    e.path = target->path;
    e.host_header = target->host.find(':') != std::string::npos ? "[" + target->host + "]:" + target->port
                                                                 : target->host + ":" + target->port;
    try {
      tcp::resolver resolver(ioc);
      e.endpoints = resolver.resolve(target->host, target->port);
    } catch (const std::exception& ex) {
      std::cerr << "loadgen: cannot resolve " << target->host << ":" << target->port << ": " << ex.what() << "\n";
      return 2;
    }
    run.targets.push_back(std::move(e));
  }

  std::vector<std::shared_ptr<Conn>> conns;
  conns.reserve(static_cast<std::size_t>(opt.connections));
  for (int i = 0; i < opt.connections; ++i) {
    conns.push_back(std::make_shared<Conn>(run, i));
    conns.back()->all_ = &conns;
  }

  std::vector<std::unique_ptr<ThreadStats>> stats;
  for (int i = 0; i < opt.threads; ++i) stats.push_back(std::make_unique<ThreadStats>());
  auto work = asio::make_work_guard(ioc);
  std::vector<std::thread> pool;
  for (int i = 0; i < opt.threads; ++i)
    pool.emplace_back([&ioc, s = stats[static_cast<std::size_t>(i)].get()] {
      t_stats = s;
      ioc.run();
    });

  // Connect phase.
  const auto connect_start = Clock::now();
  const int first = std::min(kMaxConnectsInFlight, opt.connections);
  run.next_index.store(first);
  for (int i = 0; i < first; ++i) {
    auto c = conns[static_cast<std::size_t>(i)];
    asio::post(c->executor(), [c] { c->Start(); });
  }
  auto last_report = connect_start;
  while (run.settled.load() < opt.connections && Clock::now() - connect_start < kSetupDeadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (Clock::now() - last_report > std::chrono::seconds(2)) {
      last_report = Clock::now();
      std::cerr << "loadgen: connecting: " << run.ready.load() << " ready, "
                << run.settled.load() - run.ready.load() << " failed of " << opt.connections << "\n";
    }
  }
  const double connect_s = std::chrono::duration<double>(Clock::now() - connect_start).count();
  const int ready_at_start = run.ready.load();
  std::cerr << "loadgen: " << ready_at_start << " of " << opt.connections << " connections ready in " << std::fixed
            << std::setprecision(2) << connect_s << " s\n";

  // Run phase.
  const auto secs = [](double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); };
  run.t0 = Clock::now();
  run.warm_end = opt.idle ? run.t0 : run.t0 + secs(opt.warmup);
  run.end = run.warm_end + secs(opt.duration);
  run.begun.store(true);
  for (auto& c : conns) asio::post(c->executor(), [c] { c->Begin(); });
  std::this_thread::sleep_until(run.end);
  const int open_at_end = run.open.load();

  // Stop: close every connection politely, give the closes a few seconds, then stop.
  run.stopping.store(true);
  for (auto& c : conns) asio::post(c->executor(), [c] { c->Close(); });
  const auto close_start = Clock::now();
  while (run.open.load() > 0 && Clock::now() - close_start < kCloseGrace)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  work.reset();
  ioc.stop();
  for (auto& t : pool) t.join();
  conns.clear();

  // Merge.
  ThreadStats total;
  for (auto& s : stats) {
    total.latency_us.merge(s->latency_us);
    total.sent += s->sent;
    total.answers += s->answers;
    total.answers_all += s->answers_all;
    total.unanswered += s->unanswered;
    total.unsent += s->unsent;
    for (auto& [k, v] : s->errors) total.errors[k] += v;
  }
  std::uint64_t error_total = 0;
  for (auto& [k, v] : total.errors) error_total += v;
  const double aps = opt.idle ? 0.0 : static_cast<double>(total.answers) / opt.duration;
  const auto& h = total.latency_us;
  const std::uint64_t p50 = h.value_at_percentile(50), p90 = h.value_at_percentile(90),
                      p99 = h.value_at_percentile(99), p999 = h.value_at_percentile(99.9), pmax = h.max();

  // Table.
  std::ostringstream out;
  out << std::fixed;
  out << "loadgen " << opt.mode << (opt.idle ? " idle" : "");
  for (const auto& url : opt.urls) out << "  " << url;
  if (!opt.label.empty()) out << "  [" << opt.label << "]";
  out << "\n";
  out << "  connections     " << opt.connections << " (" << ready_at_start << " ready after " << std::setprecision(2)
      << connect_s << " s, " << open_at_end << " open at end)\n";
  if (!opt.idle) {
    out << "  load            "
        << (opt.rate > 0 ? "open loop, " + Thousands(static_cast<std::uint64_t>(opt.rate)) + " msg/s" : "closed loop")
        << ", " << opt.threads << " client thread(s), warm-up " << std::setprecision(1) << opt.warmup
        << " s, measured " << opt.duration << " s\n";
    out << "  sent            " << Thousands(total.sent);
    if (opt.rate > 0) out << "  (" << Thousands(total.unsent) << " more were due but never sent)";
    out << "  (" << Thousands(total.unanswered) << " in flight at end)\n";
    out << "  answers         " << Thousands(total.answers) << "  (" << std::setprecision(1) << aps << " /s)\n";
    out << "  latency (us)    p50 " << Thousands(p50) << "  p90 " << Thousands(p90) << "  p99 " << Thousands(p99)
        << "  p99.9 " << Thousands(p999) << "  max " << Thousands(pmax) << "  mean " << std::setprecision(1) << h.mean()
        << "\n";
  } else {
    out << "  held            " << std::setprecision(1) << opt.duration << " s\n";
  }
  out << "  errors          " << (error_total == 0 ? "none" : Thousands(error_total)) << "\n";
  for (auto& [k, v] : total.errors) out << "    " << std::left << std::setw(30) << k << std::right << Thousands(v) << "\n";
  std::cout << out.str() << std::flush;

  if (!opt.json_file.empty()) {
    ordered_json j;
    j["label"] = opt.label;
    j["mode"] = opt.mode;
    j["idle"] = opt.idle;
    j["url"] = opt.urls.front();
    j["urls"] = opt.urls;
    j["connections"] = opt.connections;
    j["rate"] = opt.rate;
    j["threads"] = opt.threads;
    j["warmup_s"] = opt.idle ? 0.0 : opt.warmup;
    j["duration_s"] = opt.duration;
    j["connect_s"] = connect_s;
    j["ready"] = ready_at_start;
    j["sent"] = total.sent;
    j["unsent"] = total.unsent;
    j["in_flight_at_end"] = total.unanswered;
    j["answers"] = total.answers;
    j["answers_total"] = total.answers_all;  // warm-up and measured window: for CPU per answer
    j["answers_per_second"] = aps;
    j["latency_us"] = {{"p50", p50}, {"p90", p90},        {"p99", p99},
                       {"p999", p999}, {"max", pmax}, {"mean", h.mean()}};
    ordered_json errors = ordered_json::object();
    errors["total"] = error_total;
    for (auto& [k, v] : total.errors) errors[k] = v;
    j["errors"] = errors;
    j["open_at_end"] = open_at_end;
    std::ofstream f(opt.json_file);
    f << j.dump(2) << "\n";
    if (!f) {
      std::cerr << "loadgen: cannot write " << opt.json_file << "\n";
      return 1;
    }
  }
  return ready_at_start > 0 ? 0 : 1;
}
