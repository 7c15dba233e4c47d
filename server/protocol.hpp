// Protocol v1 (SPEC section 6): the frames a client may send, validated, and the frames the
// server sends, as JSON text. Nothing here touches a socket.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "dialog/conversation.hpp"

namespace backcheck::server {

// The error codes of SPEC section 6.
enum class ErrorCode {
  kBadJson,
  kBadRequest,
  kUnknownType,
  kUnknownConversation,
  kTextTooLong,
  kRateLimited,
  kTooManyConversations,
  kStoreUnavailable,
};
inline constexpr ErrorCode kAllErrorCodes[] = {
    ErrorCode::kBadJson,    ErrorCode::kBadRequest,           ErrorCode::kUnknownType,
    ErrorCode::kUnknownConversation, ErrorCode::kTextTooLong, ErrorCode::kRateLimited,
    ErrorCode::kTooManyConversations, ErrorCode::kStoreUnavailable};
const char* ErrorCodeName(ErrorCode code);

// The safety guidance for a message that raised a red flag but got no reply (a store failure, a
// full conversation table, a limit): an error frame carries it, so the person is always told
// what to do.
// What a person must be told even when their message cannot be answered: the reply's text for a
// message that reports a red flag, or that the safety net asks about (`possible_flags`: the text
// asks the question and, for an emergency-level flag, already says what to do if it is so).
struct Guidance {
  std::string text;
  knowledge::Urgency urgency = knowledge::Urgency::kNone;
  std::vector<std::string> red_flags;
  std::vector<std::string> possible_flags;
};

struct Error {
  ErrorCode code;
  std::string message;
  std::optional<Guidance> guidance;
};

inline constexpr std::size_t kMaxRefBytes = 256;
inline constexpr std::size_t kMaxKeyBytes = 200;        // a bridge's key of a conversation
inline constexpr std::size_t kMaxMessageIdBytes = 128;  // a client's id of a message

// `key` (bridge connections only) names a conversation by the bridge's own key instead of its
// id; the session resolves it to the conversation id (ConversationService::KeyedId) before the
// frame is handled, so everything after sees an id.
struct StartFrame {
  std::optional<std::string> resume;
  std::optional<std::uint64_t> history_before;  // page back: turns with a smaller seq
  std::optional<std::string> key;
};
struct MessageFrame {
  std::string text;
  std::optional<std::string> conversation;
  std::optional<std::string> key;
  std::optional<std::string> id;  // the client's id of this message: a repeat is answered once
};
struct EndFrame {
  std::string conversation;  // empty when `key` names it
  std::optional<std::string> key;
};

struct ClientFrame {
  std::optional<std::string> ref;  // echoed in the reply or error
  std::variant<StartFrame, MessageFrame, EndFrame> body;
};

// Parses one text frame, which must be valid UTF-8: the WebSocket transport has checked it (Beast
// fails a text frame that is not with 1007). On failure the error says what is wrong; `ref` is
// set whenever the frame carried a valid one, so the error can echo it.
struct ParseResult {
  std::optional<ClientFrame> frame;
  std::optional<Error> error;
  std::optional<std::string> ref;
};
ParseResult ParseClientFrame(std::string_view text);

// An operator's frame (/v1/operator): {"type":"ack","id":N,"note"?}, or claim / join / leave
// with "conversation", or say with "conversation" and "text"; each may carry a `ref` (as the
// person's frames: a string of at most kMaxRefBytes), echoed on the answers to that operator
// only (an error, `said`), never on what every operator is told. Any bytes; never throws.
inline constexpr std::size_t kMaxOperatorTextBytes = 8000;
struct OperatorFrame {
  enum class Kind { kAck, kClaim, kJoin, kSay, kLeave } kind = Kind::kAck;
  std::int64_t ack = 0;      // kAck: the escalation id acknowledged
  std::string note;          // kAck: optional
  std::string conversation;  // the others
  std::string text;          // kSay
  std::optional<std::string> ref;
};
// On failure `ref` and `conversation` are set whenever the frame carried valid ones (conversation:
// claim, join, say and leave), so the error can echo them.
struct OperatorParseResult {
  std::optional<OperatorFrame> frame;
  std::optional<Error> error;
  std::optional<std::string> ref;
  std::optional<std::string> conversation;
};
OperatorParseResult ParseOperatorFrame(std::string_view text);

// Counts Unicode code points of valid UTF-8 (the transport has validated it).
std::size_t CountCodePoints(std::string_view utf8);

struct HistoryEntry {
  std::string role;  // "user", "assistant" or "operator"
  std::string text;
  std::uint64_t seq = 0;
  std::string operator_name;  // role "operator": who wrote it
  // Role "assistant": the reply's quick replies and sources as stored with the turn
  // (TurnRecord::reply_extras, a JSON object), so a restored reply shows them again; or empty.
  std::string extras;
};

// A bounded slice of a conversation's history; `more`: earlier turns exist.
struct HistoryPage {
  std::vector<HistoryEntry> entries;
  bool more = false;
};

// What the knowledge data gives `started` frames (SPEC 6.1), so every client shows the same
// words: the welcome reply a new conversation opens with (flow.jsonc text "greeting", quick
// replies "welcome"), and the one line a client keeps on screen at each urgency level
// (red_flags.jsonc guidance "banner"). Built once, when the server starts.
struct StartedTexts {
  struct Banner {
    knowledge::Urgency level = knowledge::Urgency::kNone;
    std::string text;
  };
  std::string welcome_text;  // empty: no `welcome` field
  std::vector<std::string> welcome_quick_replies;
  std::vector<Banner> banners;
  std::string emergency_number;  // --emergency-number; empty: no `emergency_number` field
};

// Every frame below is written by server/json_writer.hpp: none of them can throw on odd input.
// `started`: `welcome` only on a new conversation (a resumed one has its history), `banners`
// (level -> text) on every one.
// A history page's entries as a JSON array (started.history, the operator's transcript).
std::string HistoryJson(const HistoryPage& history);
// What a history entry keeps of a reply besides its text (HistoryEntry::extras): its quick
// replies and sources as a JSON object; empty when it has neither.
std::string ReplyExtrasJson(const dialog::Reply& reply);
std::string StartedJson(const std::string& conversation, bool resumed, const dialog::ConversationState& state,
                        const HistoryPage& history, const StartedTexts& texts = {},
                        const std::optional<std::string>& key = std::nullopt);
// What a reply echoes of its request besides `ref`, and whether it repeats a stored one.
struct ReplyEcho {
  const std::string* key = nullptr;  // the bridge's key of the conversation
  const std::string* id = nullptr;   // the client's id of the message
  bool duplicate = false;            // the message's id was answered before: this is that reply
};
// The reply object; `type` is "reply" for the WebSocket and omitted for POST /v1/messages.
std::string ReplyJson(const std::string& conversation, std::uint64_t seq, const std::optional<std::string>& ref,
                      const dialog::Reply& reply, bool with_type = true, const ReplyEcho& echo = {});
std::string EndedJson(const std::string& conversation, const std::optional<std::string>& key = std::nullopt);
// `conversation` (may be null): the conversation an operator's refused action named.
std::string ErrorJson(const Error& error, const std::optional<std::string>& ref,
                      const std::string* conversation = nullptr);
// `notice`: a frame no request asked for (README "Frames pushed to a bridge"); `key` may be null.
std::string NoticeJson(const std::string& conversation, const std::string* key, const std::string& notice,
                       const std::string& text);
// `handoff`: an operator joined or left the conversation (`event` "joined" / "left").
std::string HandoffJson(const std::string& conversation, const std::string* key, const std::string& event,
                        const std::string& operator_name);
// `operator_message`: what an operator wrote to the person (turn `seq`).
std::string OperatorMessageJson(const std::string& conversation, const std::string* key, const std::string& text,
                                const std::string& operator_name, std::uint64_t seq);
// `received`: a message that went to the operator who has joined (the assistant said nothing):
// the client knows it arrived and is kept (seq), and shows no reply.
std::string ReceivedJson(const std::string& conversation, std::uint64_t seq, const std::optional<std::string>& ref,
                         const ReplyEcho& echo = {});
std::string GuidanceJson(const Guidance& guidance);

}  // namespace backcheck::server
