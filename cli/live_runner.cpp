// RunLive: conversation scripts against a running server, over one WebSocket speaking protocol
// v1. Scripts run concurrently as separate conversations multiplexed on the connection: each has
// one message in flight, and replies are routed back by conversation id. A synchronous client is
// enough: the server answers every frame, so the loop always has a frame to wait for.
#include <utility>  // before Boost: Boost 1.74's Asio under C++20 with g++ 12

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "cli/script_runner.hpp"

namespace backcheck::cli {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kRateLimitBackoff = std::chrono::milliseconds(250);

struct Url {
  std::string host, port, path;
};

Url ParseUrl(const std::string& url) {
  static const std::regex kWs(R"(^ws://([^/:]+|\[[0-9a-fA-F:]+\])(?::(\d+))?(/.*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, kWs)) {
    throw std::invalid_argument("--url must look like ws://HOST:PORT/v1/chat, not '" + url + "'");
  }
  return Url{m[1].str(), m[2].matched ? m[2].str() : "80", m[3].matched ? m[3].str() : "/v1/chat"};
}

dialog::Reply ReplyFromJson(const json& j) {
  dialog::Reply r;
  r.text = j.value("text", "");
  r.intent = j.value("intent", "");
  r.state = j.value("state", "");
  r.urgency = knowledge::ParseUrgency(j.value("urgency", "none")).value_or(knowledge::Urgency::kNone);
  r.red_flags = j.value("red_flags", std::vector<std::string>{});
  r.possible_flags = j.value("possible_flags", std::vector<std::string>{});
  r.escalated = j.value("escalated", false);
  r.quick_replies = j.value("quick_replies", std::vector<std::string>{});
  for (const auto& s : j.value("sources", json::array())) {
    r.sources.push_back(knowledge::Source{s.value("section", ""), s.value("quote", "")});
  }
  return r;
}

class LiveRun {
 public:
  LiveRun(const std::vector<Script>& scripts, std::size_t concurrency)
      : scripts_(scripts), concurrency_(std::max<std::size_t>(concurrency, 1)), results_(scripts.size()), started_at_(scripts.size()) {
    for (std::size_t i = 0; i < scripts.size(); ++i) results_[i].script = &scripts[i];
  }

  std::vector<ScriptResult> Run(const std::string& url) {
    try {
      Connect(ParseUrl(url));
      StartMore();
      while (finished_ < scripts_.size()) Handle(Read());
      DrainEnds();
      beast::error_code ignored;
      ws_.close(websocket::close_code::normal, ignored);
    } catch (const std::exception& e) {
      for (auto& r : results_) {
        if (!done_.count(static_cast<std::size_t>(&r - results_.data())) && r.error.empty()) {
          r.error = std::string("connection to ") + url + " failed: " + e.what();
        }
      }
    }
    return std::move(results_);
  }

 private:
  struct Active {
    std::string conversation;
    std::size_t next_turn = 0;
  };

  void Connect(const Url& url) {
    tcp::resolver resolver(ioc_);
    auto endpoints = resolver.resolve(url.host, url.port);
    asio::connect(ws_.next_layer(), endpoints);
    ws_.read_message_max(1 << 20);
    ws_.handshake(url.host + ":" + url.port, url.path);
    ws_.text(true);
  }

  void Send(const json& frame) { ws_.write(asio::buffer(frame.dump())); }

  json Read() {
    buffer_.clear();
    ws_.read(buffer_);
    return json::parse(beast::buffers_to_string(buffer_.data()));
  }

  void StartMore() {
    while (active_.size() + starting_.size() < concurrency_ && next_ < scripts_.size()) {
      if (scripts_[next_].FixesTime()) {  // the server's clock cannot be fixed: skipped, and counted
        results_[next_].skipped = "it fixes the time with @now; a live server keeps its own clock";
        done_.insert(next_++);
        ++finished_;
        continue;
      }
      started_at_[next_] = Clock::now();
      Send({{"type", "start"}, {"ref", std::to_string(next_)}});
      starting_.push_back(next_++);
    }
  }

  void SendNext(std::size_t s) {
    Active& a = active_.at(s);
    if (a.next_turn < scripts_[s].turns.size()) {
      Send({{"type", "message"},
            {"conversation", a.conversation},
            {"text", scripts_[s].turns[a.next_turn].text},
            {"ref", std::to_string(s)}});
      return;
    }
    Send({{"type", "end"}, {"conversation", a.conversation}, {"ref", "end:" + a.conversation}});
    ++pending_ends_;
    Finish(s);
  }

  void Finish(std::size_t s) {
    results_[s].seconds = std::chrono::duration<double>(Clock::now() - started_at_[s]).count();
    if (auto it = active_.find(s); it != active_.end()) {
      by_conversation_.erase(it->second.conversation);
      active_.erase(it);
    }
    done_.insert(s);
    ++finished_;
    StartMore();
  }

  void Handle(const json& frame) {
    const std::string type = frame.value("type", "");
    if (type == "ended") {
      --pending_ends_;
      return;
    }
    if (type == "started") {
      if (starting_.empty()) throw std::runtime_error("a 'started' frame nobody asked for");
      std::size_t s = starting_.front();
      starting_.pop_front();
      const std::string conversation = frame.value("conversation", "");
      active_[s] = Active{conversation, 0};
      by_conversation_[conversation] = s;
      SendNext(s);
    } else if (type == "reply") {
      auto it = by_conversation_.find(frame.value("conversation", ""));
      if (it == by_conversation_.end()) return;  // not ours (cannot happen on our own socket)
      std::size_t s = it->second;
      Active& a = active_.at(s);
      TurnResult tr;
      tr.reply = ReplyFromJson(frame);
      tr.reply_json = frame.dump();
      auto checked = CheckTurn(scripts_[s].turns[a.next_turn], tr.reply, nullptr);  // no `said` over the wire
      tr.failures = std::move(checked.failures);
      tr.skipped = checked.skipped.size();
      results_[s].turns.push_back(std::move(tr));
      ++a.next_turn;
      SendNext(s);
    } else if (type == "error") {
      HandleError(frame);
    }
    // "ended": nothing to do.
  }

  // Ends answered after the last script finished: read them so none is left rate-limited.
  void DrainEnds() {
    while (pending_ends_ > 0) {
      json frame = Read();
      const std::string type = frame.value("type", "");
      if (type == "ended") --pending_ends_;
      if (type == "error") HandleError(frame);
    }
  }

  void HandleError(const json& frame) {
    const std::string code = frame.value("code", "");
    const std::string ref = frame.value("ref", "");
    if (ref.rfind("end:", 0) == 0) {  // ending a finished script's conversation
      --pending_ends_;                 // this error answers that `end`
      if (code == "rate_limited") {
        std::this_thread::sleep_for(kRateLimitBackoff);
        Send({{"type", "end"}, {"conversation", ref.substr(4)}, {"ref", ref}});
        ++pending_ends_;
      }
      return;
    }
    std::size_t s = 0;
    try {
      s = std::stoul(ref);
    } catch (const std::exception&) {
      throw std::runtime_error("the server sent an error without our ref: " + frame.dump());
    }
    if (s >= scripts_.size()) throw std::runtime_error("an error for an unknown ref: " + frame.dump());
    const bool starting = !active_.count(s);
    if (code == "rate_limited") {  // the server asks us to slow down: wait, then send it again
      std::this_thread::sleep_for(kRateLimitBackoff);
      if (starting) {
        Send({{"type", "start"}, {"ref", std::to_string(s)}});
      } else {
        SendNext(s);
      }
      return;
    }
    results_[s].error = "the server answered message " + std::to_string(starting ? 0 : active_.at(s).next_turn + 1) +
                        " with an error: " + frame.dump();
    if (starting) std::erase(starting_, s);
    Finish(s);
  }

  const std::vector<Script>& scripts_;
  std::size_t concurrency_;
  std::vector<ScriptResult> results_;
  std::vector<Clock::time_point> started_at_;
  asio::io_context ioc_;
  websocket::stream<tcp::socket> ws_{ioc_};
  beast::flat_buffer buffer_;
  std::size_t next_ = 0, finished_ = 0;
  std::size_t pending_ends_ = 0;  // `end` frames sent and not yet answered
  std::deque<std::size_t> starting_;  // scripts whose `start` awaits its `started`, in order
  std::map<std::size_t, Active> active_;
  std::map<std::string, std::size_t> by_conversation_;
  std::set<std::size_t> done_;
};

}  // namespace

std::vector<ScriptResult> RunLive(const std::string& url, const std::vector<Script>& scripts, std::size_t concurrency) {
  return LiveRun(scripts, concurrency).Run(url);
}

}  // namespace backcheck::cli
