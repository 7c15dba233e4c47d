#include "server/store/postgres_store.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <deque>
#include <utility>
#include <iostream>
#include <typeinfo>
#include <nlohmann/json.hpp>
#include <set>
#include <span>

#include "server/json_writer.hpp"
#include "server/log.hpp"
#include "server/store/pg_result.hpp"
#include "server/store/state_json.hpp"

namespace backcheck::server {
namespace {

// Migration i (1-based) takes the schema from version i-1 to version i. Append; never edit: the
// name is recorded with the version, and a database whose record names another migration is
// foreign.
struct Migration {
  const char* name;
  const char* sql;
};
const Migration kMigrations[] = {
    {"conversations, turns, escalations", R"sql(
CREATE TABLE conversations (
  id          text PRIMARY KEY,
  state       text NOT NULL,    -- the engine's ConversationState as JSON; never queried into, so
                                -- text (a write is not parsed) rather than jsonb
  seq         bigint NOT NULL,  -- of the last turn
  created_at  bigint NOT NULL,  -- Unix ms
  last_active bigint NOT NULL   -- Unix ms
);
CREATE INDEX conversations_idle ON conversations (last_active);
CREATE TABLE turns (
  conversation text NOT NULL,
  seq          bigint NOT NULL,
  role         text NOT NULL CHECK (role IN ('user', 'assistant', 'operator')),
  text         text NOT NULL,
  at           bigint NOT NULL,  -- Unix ms
  PRIMARY KEY (conversation, seq, role)
);
CREATE TABLE escalations (
  id           bigserial PRIMARY KEY,
  conversation text NOT NULL,
  level        text NOT NULL,
  flags        text NOT NULL,    -- JSON array of flag ids
  text         text NOT NULL,    -- the message that raised the urgency
  at           bigint NOT NULL,  -- Unix ms
  acked_at     bigint,           -- Unix ms, NULL until an operator acknowledges it
  acked_by     text
);
CREATE INDEX escalations_unacked ON escalations (id) WHERE acked_at IS NULL;
CREATE INDEX escalations_conversation ON escalations (conversation);
-- A row the writer rewrites to find out whether writes work again after a failure.
CREATE TABLE store_probe (id integer PRIMARY KEY CHECK (id = 1), at bigint NOT NULL);
)sql"},
    {"conversation updates can be HOT", R"sql(
-- The per-turn UPDATE of a conversation then changes no indexed column, so it can be a HOT update
-- (no new index entries) when its page has room: a purge scans the table instead, rarely.
DROP INDEX conversations_idle;
ALTER TABLE conversations SET (fillfactor = 70);
)sql"},
    {"message ids and conversation keys", R"sql(
-- A message the client gave an id: its turn's seq and the reply as JSON, so that a repeat of the
-- id is answered again without the engine (issue 15). Only such messages have a row.
CREATE TABLE message_ids (
  conversation text NOT NULL,
  client_id    text NOT NULL,
  seq          bigint NOT NULL,
  reply        text NOT NULL,
  PRIMARY KEY (conversation, client_id)
);
-- The secret keyed conversations' ids are derived from: made by the first instance, read by all.
CREATE TABLE store_secrets (name text PRIMARY KEY, value bytea NOT NULL);
)sql"},
    {"operators' turns", R"sql(
-- A reply an operator wrote (role 'operator') names them (issue 16).
ALTER TABLE turns ADD COLUMN author text;
)sql"},
    {"operators' audit and revisions", R"sql(
-- Who did what to a conversation, and when (issue 16): claim, join, say, leave, ack. Kept like the
-- escalations (a purge of the conversation leaves them). seq: the conversation's seq then, so a
-- transcript shows each action after the turn it followed.
CREATE TABLE operator_actions (
  id           bigserial PRIMARY KEY,
  conversation text NOT NULL,
  seq          bigint NOT NULL,
  action       text NOT NULL CHECK (action IN ('claim', 'join', 'say', 'leave', 'ack')),
  by_operator  text NOT NULL,    -- the operator's name; '' for the unnamed one
  at           bigint NOT NULL,  -- Unix ms
  escalation   bigint,           -- ack: the escalation acknowledged
  note         text              -- ack: the operator's note, if any
);
CREATE INDEX operator_actions_conversation ON operator_actions (conversation, id);
-- Every change to a conversation's row adds one, a state-only change (a join) too: an instance
-- whose cached state is older cannot overwrite it, though the seq is the same.
ALTER TABLE conversations ADD COLUMN revision bigint NOT NULL DEFAULT 0;
ALTER TABLE escalations ADD COLUMN ack_note text;
)sql"},
    {"the escalation webhook's outbox", R"sql(
-- The escalation webhook's outbox (issue 16), shared by the instances (server/store/postgres_outbox.hpp):
-- when the receiver took it (Unix ms; NULL: not yet), and which instance holds it for delivery,
-- until when (Unix ms on the database's clock; renewed by its holder). Pending: neither
-- delivered nor acknowledged (a page is for an escalation nobody has seen).
ALTER TABLE escalations ADD COLUMN webhook_at bigint, ADD COLUMN webhook_lease_until bigint,
  ADD COLUMN webhook_lessee text;
CREATE INDEX escalations_webhook_pending ON escalations (id) WHERE webhook_at IS NULL AND acked_at IS NULL;
)sql"},
    {"replies' quick replies and sources", R"sql(
-- A reply's quick replies and sources as JSON (issue 16), on the assistant's row, so a restored
-- reply shows them again; NULL: none.
ALTER TABLE turns ADD COLUMN extras text;
)sql"},
    {"review of what it could not answer", R"sql(
-- What people asked that it could not answer (issue 17, --review; server/store/review.hpp): the
-- message, when, the flow state it arrived in, the retrieval score (0: the fallback) and the
-- intent. No conversation: an entry outlives its conversation, until --review-days.
CREATE TABLE review (
  id     bigserial PRIMARY KEY,
  at     bigint NOT NULL,  -- Unix ms
  text   text NOT NULL,
  state  text NOT NULL,
  score  double precision NOT NULL,
  intent text NOT NULL
);
CREATE INDEX review_at ON review (at);
)sql"},
};
constexpr int kMigrationCount = static_cast<int>(std::size(kMigrations));
static_assert(kMigrationCount == PostgresStore::kSchemaVersion);
// Taken (for the transaction) by every instance that migrates: "backchek" in ASCII.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7017280452245743979)";

constexpr auto kTombstoneLife = std::chrono::minutes(10);

// Type oids (pg_type.h is a server header): parameters are typed at prepare time so texts can go
// in binary form (their bytes, no copy, no terminator), arrays too (built by ArrayParam).
constexpr Oid kText = 25, kInt8 = 20, kBool = 16, kInt8Array = 1016, kTextArray = 1009, kBoolArray = 1000;

// The prepared statements; every connection prepares all of them.
struct StatementDef {
  const char* name;
  const char* sql;
  std::vector<Oid> types;
};
// The records of a batch, set-based: each parameter an array with one element per record (at most
// one record per conversation: a conversation's next record goes in the next statement). Creates
// insert their row (unless the id exists), updates update theirs where seq is the expected one;
// the written ones (w) get their turn row, escalation and operator's action (audit), and come back as rows (i: the record's
// position, 1-based; its escalation's id or NULL), notifying the operators of each escalation in
// the same transaction. A record not returned was not written: a conflict.
constexpr const char* kApplySql = R"sql(
WITH r AS MATERIALIZED (
  SELECT * FROM unnest($1::text[], $2::bool[], $3::int8[], $4::int8[], $5::int8[], $6::text[], $7::bool[],
                       $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int8[],
                       $14::text[], $15::text[], $16::text[], $17::int8[], $18::text[], $19::text[], $20::text[], $21::text[],
                       $22::text[], $23::text[], $24::text[])
    WITH ORDINALITY AS x(id, fresh, expected, seq, at, state, has_turn, user_text, reply_text,
                         level, flags, etext, eat, client_id, reply, author, revision, audit, audit_by, event, extras,
                         review_intent, review_state, review_score, i)),
u AS (UPDATE conversations c SET state = r.state, seq = r.seq, last_active = r.at, revision = c.revision + 1 FROM r
      WHERE NOT r.fresh AND c.id = r.id AND c.seq = r.expected AND (r.revision < 0 OR c.revision = r.revision) RETURNING r.i),
n AS (INSERT INTO conversations (id, state, seq, created_at, last_active)
      SELECT id, state, seq, at, at FROM r WHERE fresh ORDER BY i ON CONFLICT (id) DO NOTHING RETURNING id),
w AS (SELECT i FROM u UNION ALL SELECT r.i FROM n JOIN r ON r.id = n.id AND r.fresh),
t AS (INSERT INTO turns (conversation, seq, role, text, at, author, extras)
      SELECT r.id, r.seq, m.role, m.text, r.at, m.author, m.extras FROM w JOIN r USING (i),
        LATERAL (VALUES ('user', r.user_text, NULL, NULL),
                        (CASE WHEN r.author = '' THEN 'assistant' ELSE 'operator' END, r.reply_text,
                         NULLIF(r.author, ''), NULLIF(r.extras, ''))) AS m(role, text, author, extras)
      WHERE r.has_turn AND m.text <> ''),
m AS (INSERT INTO message_ids (conversation, client_id, seq, reply)
      SELECT r.id, r.client_id, r.seq, r.reply FROM w JOIN r USING (i) WHERE r.has_turn AND r.client_id <> ''
      ON CONFLICT DO NOTHING),
o AS (INSERT INTO operator_actions (conversation, seq, action, by_operator, at)
      SELECT r.id, r.seq, r.audit, r.audit_by, r.at FROM w JOIN r USING (i) WHERE r.audit <> ''),
v AS (INSERT INTO review (at, text, state, score, intent)
      SELECT r.at, r.user_text, r.review_state, r.review_score::float8, r.review_intent FROM w JOIN r USING (i)
      WHERE r.review_intent <> ''),
e AS (INSERT INTO escalations (conversation, level, flags, text, at)
      SELECT r.id, r.level, r.flags, r.etext, r.eat FROM w JOIN r USING (i) WHERE r.level <> '' ORDER BY r.i
      RETURNING conversation, id)
SELECT w.i, e.id, CASE WHEN e.id IS NOT NULL THEN pg_notify('backcheck_escalations', e.id::text) END,
       CASE WHEN r.event <> '' THEN pg_notify('backcheck_events', r.event) END
FROM w JOIN r USING (i) LEFT JOIN e ON e.conversation = r.id
)sql";
constexpr int kApplyParams = 24;
const StatementDef kStatements[] = {
    {"apply", kApplySql,
     {kTextArray, kBoolArray, kInt8Array, kInt8Array, kInt8Array, kTextArray, kBoolArray, kTextArray, kTextArray,
      kTextArray, kTextArray, kTextArray, kInt8Array, kTextArray, kTextArray, kTextArray, kInt8Array, kTextArray,
      kTextArray, kTextArray, kTextArray, kTextArray, kTextArray, kTextArray}},
    {"delete_empty", "WITH c AS (DELETE FROM conversations WHERE id = $1 AND seq = 0 RETURNING id) "
                     "SELECT (SELECT count(*) FROM c), NULL::bigint",
     {kText}},
    {"escalation",
     "WITH e AS (INSERT INTO escalations (conversation, level, flags, text, at) VALUES ($1, $2, $3, $4, $5) "
     "  RETURNING id) SELECT e.id, pg_notify('backcheck_escalations', e.id::text) FROM e",
     {kText, kText, kText, kText, kInt8}},
    {"ack",
     "WITH a AS (UPDATE escalations SET acked_at = $2, acked_by = $3, ack_note = NULLIF($4, '') "
     "  WHERE id = $1 AND acked_at IS NULL RETURNING id, conversation), "
     "l AS (INSERT INTO operator_actions (conversation, seq, action, by_operator, at, escalation, note) "
     "  SELECT a.conversation, COALESCE((SELECT seq FROM conversations c WHERE c.id = a.conversation), 0), 'ack', $3, "
     "  $2, a.id, NULLIF($4, '') FROM a) "
     "SELECT a.id, pg_notify('backcheck_acks', a.id::text) FROM a",
     {kInt8, kInt8, kText, kText}},
    {"purge",
     "WITH gone AS (DELETE FROM conversations WHERE last_active < $1 OR (seq = 0 AND last_active < $2) "
     "  RETURNING id), ids AS (DELETE FROM message_ids USING gone WHERE message_ids.conversation = gone.id), "
     "review AS (DELETE FROM review WHERE at < $3) "
     "DELETE FROM turns USING gone WHERE turns.conversation = gone.id",
     {kInt8, kInt8, kInt8}},
    {"probe", "INSERT INTO store_probe (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
     {kInt8}},
    {"count", "SELECT count(*) FROM conversations", {}},
    {"load", "SELECT state, seq, last_active, revision FROM conversations WHERE id = $1", {kText}},
    {"audit",
     "SELECT action, by_operator, seq, at, COALESCE(escalation, 0), COALESCE(note, '') FROM "
     "(SELECT * FROM operator_actions WHERE conversation = $1 ORDER BY id DESC LIMIT $2) a ORDER BY id",
     {kText, kInt8}},
    {"load_escalations", "SELECT level, flags FROM escalations WHERE conversation = $1 ORDER BY id", {kText}},
    {"last_seq", "SELECT seq FROM conversations WHERE id = $1", {kText}},
    {"history",
     "SELECT seq, role, text, COALESCE(author, ''), COALESCE(extras, '') FROM turns "
     "WHERE conversation = $1 AND seq >= $2 AND seq < $3 "
     "ORDER BY seq, role DESC",
     {kText, kInt8, kInt8}},
    {"find_reply", "SELECT seq, reply FROM message_ids WHERE conversation = $1 AND client_id = $2", {kText, kText}},
    {"unacked_ids", "SELECT id FROM escalations WHERE acked_at IS NULL ORDER BY id", {}},
    {"escalations_by_id",
     "SELECT id, conversation, level, flags, text, at FROM escalations WHERE id = ANY($1) ORDER BY id",
     {kInt8Array}},
    {"acked_by_id",
     "SELECT id, COALESCE(acked_by, '') FROM escalations WHERE acked_at IS NOT NULL AND id = ANY($1) ORDER BY id",
     {kInt8Array}},
};

PostgresOptions Sane(PostgresOptions o) {
  o.readers = std::max<std::size_t>(o.readers, 1);
  o.max_batch = std::max<std::size_t>(o.max_batch, 1);
  return o;
}

std::int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using pg::Int;
using pg::Ok;
using pg::Result;
using pg::ResultError;
using pg::Value;

// Prepares every statement on a connection (once the schema is known to be ours).
bool PrepareAll(PGconn* conn) {
  for (const auto& s : kStatements) {
    Result r(PQprepare(conn, s.name, s.sql, static_cast<int>(s.types.size()), s.types.data()));
    if (!Ok(r)) return false;
  }
  return true;
}

// PostgreSQL text cannot hold a NUL byte (a JSON "\u0000" can): such a record would be refused,
// and a refused escalation would be retried for ever. U+FFFD stands in for it.
void ReplaceNul(std::string& text) {
  if (std::memchr(text.data(), '\0', text.size()) == nullptr) return;
  std::string out;
  out.reserve(text.size() + 8);
  for (char ch : text) {
    if (ch == '\0') {
      out += "\xEF\xBF\xBD";
    } else {
      out += ch;
    }
  }
  text = std::move(out);
}

// For an escalation retried alone: its text must be storable or it would be retried for ever, and
// an operator never told. Invalid UTF-8 (and NUL) become U+FFFD. (A turn's texts are left as they
// are: the server takes valid UTF-8 only, and a refused turn fails alone.)
void MakeStorable(std::string& text) {
  std::string out;
  bool changed = false;
  for (std::size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    std::size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
    bool ok = n != 0 && b != 0 && i + n <= text.size() && !(n == 2 && b < 0xc2) && !(n == 4 && b > 0xf4);
    for (std::size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    if (ok && n == 3) {  // no overlong forms, no surrogates
      const auto c = static_cast<unsigned char>(text[i + 1]);
      ok = !(b == 0xe0 && c < 0xa0) && !(b == 0xed && c >= 0xa0);
    }
    if (ok && n == 4) {
      const auto c = static_cast<unsigned char>(text[i + 1]);
      ok = !(b == 0xf0 && c < 0x90) && !(b == 0xf4 && c >= 0x90);
    }
    if (ok) {
      out.append(text, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      changed = true;
      ++i;
    }
  }
  if (changed) text = std::move(out);
}

std::string IdArray(const std::vector<std::int64_t>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  return out + "}";
}

// The parameters of one statement: texts by reference, in binary form (no copy, no NUL needed);
// integers and booleans in binary form, stored here. Fixed capacity: no allocation per turn.
class Params {
 public:
  static constexpr int kMax = 24;
  Params& Text(std::string_view s) {
    static const char kEmpty[] = "";
    return Add(s.data() ? s.data() : kEmpty, static_cast<int>(s.size()), 1);
  }
  // A text-format value (an array literal): must stay alive and NUL-terminated until sent.
  Params& TextFormat(const std::string& s) { return Add(s.c_str(), 0, 0); }
  Params() = default;
  // Scalars point into this object: a copy points into its own.
  Params(const Params& other) { *this = other; }
  Params& operator=(const Params& other) {
    if (this == &other) return *this;
    n_ = other.n_;
    lengths_ = other.lengths_;
    formats_ = other.formats_;
    scalars_ = other.scalars_;
    scalar_ = other.scalar_;
    for (std::size_t i = 0; i < kMax; ++i) values_[i] = scalar_[i] ? scalars_[i].data() : other.values_[i];
    return *this;
  }

  Params& Int8(std::int64_t v) {
    auto& slot = scalars_[static_cast<std::size_t>(n_)];
    scalar_[static_cast<std::size_t>(n_)] = true;
    const auto u = static_cast<std::uint64_t>(v);
    for (int i = 0; i < 8; ++i) slot[static_cast<std::size_t>(i)] = static_cast<char>((u >> (56 - 8 * i)) & 0xff);
    return Add(slot.data(), 8, 1);
  }
  Params& Bool(bool v) {
    auto& slot = scalars_[static_cast<std::size_t>(n_)];
    scalar_[static_cast<std::size_t>(n_)] = true;
    slot[0] = v ? 1 : 0;
    return Add(slot.data(), 1, 1);
  }
  int count() const { return n_; }
  const char* const* values() const { return values_.data(); }
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  Params& Add(const char* value, int length, int format) {
    if (n_ == kMax) throw std::logic_error("too many statement parameters");
    values_[static_cast<std::size_t>(n_)] = value;
    lengths_[static_cast<std::size_t>(n_)] = length;
    formats_[static_cast<std::size_t>(n_)] = format;
    ++n_;
    return *this;
  }
  int n_ = 0;
  std::array<const char*, kMax> values_{};
  std::array<int, kMax> lengths_{};
  std::array<int, kMax> formats_{};
  std::array<std::array<char, 8>, kMax> scalars_{};
  std::array<bool, kMax> scalar_{};
};

// A one-dimensional array parameter in PostgreSQL's binary form (array_recv's): a header, then
// each element as a 4-byte length and its bytes. Reused: Reset keeps the buffer's capacity.
class ArrayParam {
 public:
  void Reset(Oid element) {
    out_.clear();
    Put32(1);  // dimensions
    Put32(0);  // no NULLs
    Put32(element);
    Put32(0);  // elements: set by Finish
    Put32(1);  // lower bound
    n_ = 0;
  }
  void Text(std::string_view s) {
    Put32(static_cast<std::uint32_t>(s.size()));
    out_.append(s.data(), s.size());
    ++n_;
  }
  // An element `write(std::string&)` appends to the buffer (no string of its own).
  template <typename F>
  void TextBy(F&& write) {
    const std::size_t at = out_.size();
    Put32(0);
    write(out_);
    Patch32(at, static_cast<std::uint32_t>(out_.size() - at - 4));
    ++n_;
  }
  void Int8(std::int64_t v) {
    Put32(8);
    const auto u = static_cast<std::uint64_t>(v);
    Put32(static_cast<std::uint32_t>(u >> 32));
    Put32(static_cast<std::uint32_t>(u & 0xffffffffu));
    ++n_;
  }
  void Bool(bool v) {
    Put32(1);
    out_ += v ? '\1' : '\0';
    ++n_;
  }
  // The array, its element count written in: valid until the next Reset.
  std::string_view Finish() {
    Patch32(12, n_);
    return out_;
  }

 private:
  void Put32(std::uint32_t v) {
    const char b[4] = {static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xff),
                       static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
    out_.append(b, 4);
  }
  void Patch32(std::size_t at, std::uint32_t v) {
    out_[at] = static_cast<char>(v >> 24);
    out_[at + 1] = static_cast<char>((v >> 16) & 0xff);
    out_[at + 2] = static_cast<char>((v >> 8) & 0xff);
    out_[at + 3] = static_cast<char>(v & 0xff);
  }
  std::string out_;
  std::uint32_t n_ = 0;
};

// One command of a pipeline: a prepared statement with parameters, or plain SQL without.
struct Command {
  const char* statement = nullptr;  // prepared name; null: `sql`
  const char* sql = nullptr;
  Params params;
};
Command Sql(const char* sql) {
  Command c;
  c.sql = sql;
  return c;
}
Command Prepared(const char* name, Params params = {}) {
  Command c;
  c.statement = name;
  c.params = params;
  return c;
}

// A guarded call of a user callback: an exception must not take a store thread with it.
template <typename F>
void Guarded(const char* what, F&& call) noexcept {
  try {
    call();
  } catch (const std::exception& e) {
    // The type only: an exception's message may quote what it was given.
    BACKCHECK_LOG(kError, "store_callback_failed").Str("store", "postgres").Str("callback", what)
        .Str("type", typeid(e).name());
  } catch (...) {
    BACKCHECK_LOG(kError, "store_callback_failed").Str("store", "postgres").Str("callback", what);
  }
}

}  // namespace

// One libpq connection with every statement prepared. Owned by one thread at a time.
class PostgresStore::Connection {
 public:
  // Connects and prepares; on failure returns null and says why in `error`.
  static std::unique_ptr<Connection> Open(const std::string& url, const PostgresOptions& o, std::string& error);
  ~Connection() { PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  PGconn* get() const { return conn_; }
  bool Bad() const { return PQstatus(conn_) != CONNECTION_OK; }
  // Bad, or left in pipeline mode by a pipeline that failed half way: not to be used again.
  bool Broken() const { return Bad() || PQpipelineStatus(conn_) != PQ_PIPELINE_OFF; }
  // Closed by the server while idle (e.g. it was shut down or restarted). A server sends an idle
  // connection that listens to nothing only bad news (a FATAL error, then end of file), so
  // anything waiting to be read counts: the caller drops it and connects again, losing nothing.
  bool Stale() {
    if (Broken()) return true;
    pollfd fd{PQsocket(conn_), POLLIN, 0};
    return poll(&fd, 1, 0) != 0;
  }
  std::string Error() const;
  std::string Where() const;

  Result Exec(const char* sql) { return Result(PQexec(conn_, sql)); }
  Result Run(const char* statement, const Params& p = {}) {
    return Result(PQexecPrepared(conn_, statement, p.count(), p.values(), p.lengths(), p.formats(), 0));
  }
  // Sends `commands` in pipeline mode with one sync and reads their results, in order: one round
  // trip. After an error the later commands come back PGRES_PIPELINE_ABORTED. False when the
  // connection failed on the way (results incomplete: drop this connection).
  bool Pipeline(std::span<const Command> commands, std::vector<Result>& results);
  // Rolls back a transaction an error left open; false when that fails too.
  bool RollbackIfOpen();

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  bool Send(const Command& c);
  PGconn* conn_;
};

std::unique_ptr<PostgresStore::Connection> PostgresStore::Connection::Open(const std::string& url,
                                                                           const PostgresOptions& o,
                                                                           std::string& error) {
  // Our defaults come first: a value the URL gives wins (libpq keeps the last one processed).
  const std::string timeout = std::to_string(o.connect_timeout_s);
  const char* keys[] = {"connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
                        "tcp_user_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), "5", "2", "3", "10000", "backcheck", url.c_str(), nullptr};
  std::unique_ptr<Connection> c(new Connection(PQconnectdbParams(keys, values, /*expand_dbname=*/1)));
  if (!c->conn_) {
    error = "out of memory";
    return nullptr;
  }
  if (c->Bad()) {
    error = c->Where() + " cannot be reached (" + c->Error() + ")";
    return nullptr;
  }
  // Notices (e.g. "relation already exists, skipping") are not errors; keep them off stderr.
  PQsetNoticeProcessor(c->conn_, [](void*, const char*) {}, nullptr);
  return c;
}

std::string PostgresStore::Connection::Error() const {
  std::string message = PQerrorMessage(conn_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  std::replace(message.begin(), message.end(), '\n', ' ');
  return message;
}

std::string PostgresStore::Connection::Where() const {
  const char* db = PQdb(conn_);
  const char* host = PQhost(conn_);
  const char* port = PQport(conn_);
  return std::string("PostgreSQL database ") + (db ? db : "?") + " on " + (host && *host ? host : "localhost") +
         ":" + (port && *port ? port : "5432");
}

bool PostgresStore::Connection::Send(const Command& c) {
  if (c.statement) {
    return PQsendQueryPrepared(conn_, c.statement, c.params.count(), c.params.values(), c.params.lengths(),
                               c.params.formats(), 0) == 1;
  }
  return PQsendQueryParams(conn_, c.sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
}

bool PostgresStore::Connection::Pipeline(std::span<const Command> commands, std::vector<Result>& results) {
  results.clear();
  if (PQenterPipelineMode(conn_) != 1) return false;
  for (const auto& c : commands) {
    if (!Send(c)) return false;
  }
  if (PQpipelineSync(conn_) != 1) return false;
  for (std::size_t i = 0; i < commands.size(); ++i) {
    Result r(PQgetResult(conn_));
    if (!r || PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) return false;  // lost on the way
    // Each command's results end with a null; a command of ours has exactly one result.
    while (Result extra{PQgetResult(conn_)}) {
      if (Bad()) return false;
    }
    results.push_back(std::move(r));
  }
  Result sync(PQgetResult(conn_));
  if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) return false;
  return PQexitPipelineMode(conn_) == 1 && !Bad();
}

bool PostgresStore::Connection::RollbackIfOpen() {
  if (PQtransactionStatus(conn_) == PQTRANS_IDLE) return true;
  return Ok(Exec("ROLLBACK"));
}

// ---------------------------------------------------------------------------------------------
// Start-up

void PostgresStore::Backoff::Failed(const PostgresOptions& o) {
  delay = delay.count() == 0 ? o.backoff_min : std::min(delay * 2, o.backoff_max);
  next = Clock::now() + delay;
}

PostgresStore::PostgresStore(std::string database_url, RaiseUrgency raise, PostgresOptions options)
    : url_(std::move(database_url)), raise_(std::move(raise)), options_(Sane(options)) {
  writer_conn_ = ConnectOrThrow(/*prepare=*/false);
  where_ = writer_conn_->Where();
  Migrate(*writer_conn_);  // prepares the writer's statements once the schema is ours
  std::vector<std::unique_ptr<Connection>> readers;
  for (std::size_t i = 0; i < options_.readers; ++i) readers.push_back(ConnectOrThrow(true));
  listen_conn_ = ConnectOrThrow(true);
  if (!StartListening(*listen_conn_) || !Refresh(*listen_conn_)) {
    throw StoreError(where_ + ": cannot read the escalations (" + listen_conn_->Error() + ")");
  }
  RefreshCount(*writer_conn_);
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw StoreError("cannot make a pipe for the store's listener");
  writer_ = std::thread([this] { WriterLoop(); });
  for (auto& r : readers) readers_.emplace_back([this, c = std::move(r)]() mutable { ReaderLoop(std::move(c)); });
  listener_thread_ = std::thread([this] { ListenerLoop(); });
}

PostgresStore::~PostgresStore() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_one();
  {
    std::lock_guard lock(read_mutex_);
    reads_stopping_ = true;
  }
  read_cv_.notify_all();
  if (wake_[1] >= 0) {
    const char byte = 1;
    [[maybe_unused]] auto n = write(wake_[1], &byte, 1);
  }
  if (writer_.joinable()) writer_.join();
  for (auto& r : readers_) r.join();
  if (listener_thread_.joinable()) listener_thread_.join();
  for (int fd : wake_) {
    if (fd >= 0) close(fd);
  }
  if (!retry_.empty()) {
    BACKCHECK_LOG(kError, "escalations_not_stored").Str("store", "postgres").Str("database", where_)
        .Uint("escalations", retry_.size()).Str("then", "could not be stored before shutting down");
  }
}

std::unique_ptr<PostgresStore::Connection> PostgresStore::ConnectOrThrow(bool prepare) {
  std::string error;
  auto c = Connection::Open(url_, options_, error);
  if (!c) throw StoreError(error + "; refusing to start");
  if (prepare && !PrepareAll(c->get())) {
    throw StoreError(c->Where() + ": cannot prepare the statements (" + c->Error() + "); refusing to start");
  }
  return c;
}

void PostgresStore::Migrate(Connection& c) {
  const auto fail = [&](const std::string& what) -> void {
    c.RollbackIfOpen();
    throw StoreError(where_ + ": " + what);
  };
  const auto exec = [&](const char* sql) {
    Result r = c.Exec(sql);
    if (!Ok(r)) fail(ResultError(r));
    return r;
  };
  exec("BEGIN");
  exec(kMigrationLock);  // two instances starting at once: the second waits, then sees it done
  const bool have_migrations = Int(exec("SELECT (to_regclass('schema_migrations') IS NOT NULL)::int"), 0, 0) != 0;
  int version = 0;
  if (!have_migrations) {
    Result ours = exec(
        "SELECT string_agg(tablename, ', ' ORDER BY tablename) FROM pg_tables WHERE schemaname = current_schema() "
        "AND tablename IN ('conversations', 'turns', 'escalations', 'store_probe')");
    if (!PQgetisnull(ours.get(), 0, 0)) {
      fail("has tables (" + Value(ours, 0, 0) +
           ") but no schema_migrations record of them: not a Backcheck database (or one changed by hand); "
           "refusing to start rather than change it");
    }
    exec("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
         "applied_at bigint NOT NULL)");
  } else {
    Result columns = exec(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'schema_migrations' AND column_name IN ('version', 'name', 'applied_at')");
    if (Int(columns, 0, 0) != 3) {
      fail("has a schema_migrations table that is not Backcheck's (another application's?); refusing to start");
    }
    Result rows = exec("SELECT version, name FROM schema_migrations ORDER BY version");
    const int n = PQntuples(rows.get());
    for (int i = 0; i < n; ++i) {
      const auto v = Int(rows, i, 0);
      if (v > kSchemaVersion) {
        fail("has schema version " + std::to_string(v) + ", newer than this server knows (" +
             std::to_string(kSchemaVersion) + "); refusing to start: run a newer server");
      }
      if (v != i + 1 || Value(rows, i, 1) != kMigrations[v - 1].name) {
        fail("has a schema_migrations record (version " + std::to_string(v) + ", '" + Value(rows, i, 1) +
             "') this server did not write: a foreign schema; refusing to start");
      }
      version = static_cast<int>(v);
    }
    if (version == 0) {
      Result ours = exec(
          "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() "
          "AND tablename IN ('conversations', 'turns', 'escalations', 'store_probe')");
      if (Int(ours, 0, 0) != 0) fail("has Backcheck's tables but an empty schema_migrations: refusing to start");
    }
  }
  for (int v = version + 1; v <= kMigrationCount; ++v) {
    exec(kMigrations[v - 1].sql);
    Params p;
    const std::string name = kMigrations[v - 1].name;
    p.Int8(v).Text(name).Int8(NowMillis());
    Result r(PQexecParams(c.get(), "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                          p.count(), std::array<Oid, 3>{kInt8, kText, kInt8}.data(), p.values(), p.lengths(),
                          p.formats(), 0));
    if (!Ok(r)) fail(ResultError(r));
  }
  // The keyed conversations' secret, made once by whichever instance migrates first.
  {
    const std::string fresh = RandomBytes(32);
    Params p;
    p.Text(fresh);
    Result r(PQexecParams(c.get(),
                          "INSERT INTO store_secrets (name, value) VALUES ('conversation_keys', $1) "
                          "ON CONFLICT (name) DO NOTHING",
                          p.count(), std::array<Oid, 1>{17 /* bytea */}.data(), p.values(), p.lengths(), p.formats(), 0));
    if (!Ok(r)) fail(ResultError(r));
    Result secret(PQexecParams(c.get(), "SELECT value FROM store_secrets WHERE name = 'conversation_keys'", 0, nullptr,
                               nullptr, nullptr, nullptr, /*binary result*/ 1));
    if (!Ok(secret) || PQntuples(secret.get()) != 1) fail("has no conversation-key secret (store_secrets)");
    key_secret_.assign(PQgetvalue(secret.get(), 0, 0), static_cast<std::size_t>(PQgetlength(secret.get(), 0, 0)));
    if (key_secret_.size() < 16) fail("has an unusable conversation-key secret (store_secrets)");
  }
  exec("COMMIT");
  // Statements are prepared only now: the tables they name exist.
  if (!PrepareAll(c.get())) fail("cannot prepare the statements (" + c.Error() + ")");
}

// ---------------------------------------------------------------------------------------------
// The writer

void PostgresStore::Commit(TurnRecord record, CommitDone done) {
  {
    std::unique_lock lock(queue_mutex_);
    if (healthy_.load() && !stopping_) {
      queue_.push_back(Write{std::move(record), std::move(done)});
      lock.unlock();
      queue_cv_.notify_one();
      return;
    }
    // Fail fast: the database is away. The operators must still hear of the escalation.
    if (record.escalation) {
      record.escalation->id = 0;
      retry_.push_back(std::move(*record.escalation));
    }
  }
  Guarded("commit", [&] { done(CommitResult::kUnavailable, std::nullopt); });
}

void PostgresStore::Acknowledge(std::int64_t id, std::string by, std::string note,
                                std::function<void(bool found)> done) {
  {
    std::unique_lock lock(queue_mutex_);
    if (healthy_.load() && !stopping_) {
      ReplaceNul(by);
      ReplaceNul(note);
      queue_.push_back(Ack{id, std::move(by), std::move(note), std::move(done)});
      lock.unlock();
      queue_cv_.notify_one();
      return;
    }
  }
  Guarded("acknowledge", [&] { done(false); });
}

void PostgresStore::Purge(std::int64_t cutoff_ms, std::int64_t empty_cutoff_ms, std::int64_t review_cutoff_ms) {
  Enqueue(PurgeJob{cutoff_ms, empty_cutoff_ms, review_cutoff_ms});  // while unhealthy the writer skips it
}

void PostgresStore::Enqueue(Job job) {
  {
    std::lock_guard lock(queue_mutex_);
    queue_.push_back(std::move(job));
  }
  queue_cv_.notify_one();
}

void PostgresStore::WriterLoop() {
  std::vector<Job> batch;
  while (true) {
    bool stopping = false;
    bool probe = false;
    {
      std::unique_lock lock(queue_mutex_);
      const auto ready = [&] { return stopping_ || !queue_.empty() || probe_requested_; };
      if (!healthy_.load()) {
        queue_cv_.wait_until(lock, writer_backoff_.next, ready);
      } else if (!retry_.empty()) {
        queue_cv_.wait_until(lock, retry_backoff_.next, ready);
      } else {
        queue_cv_.wait(lock, ready);
      }
      batch.swap(queue_);
      stopping = stopping_;
      probe = std::exchange(probe_requested_, false);
    }
    try {
      if (!healthy_.load()) {
        for (auto& job : batch) FailJob(job);  // queued before the failure was seen
        if (!stopping && writer_backoff_.Due()) Recover();
      } else {
        // The listener lost its connection: is the database away? Healthy() should say so
        // before a turn finds out.
        if (probe && !WriterConnected()) SetUnhealthy("the connection is closed and a new one cannot be made");
        if (!batch.empty()) WriteBatch(batch);
        Settle();  // before any retries: the replies wait for nothing else
        if (healthy_.load() && retry_backoff_.Due()) RetryEscalations();
      }
    } catch (const std::exception& e) {  // e.g. out of memory: fail the batch, keep the writer
      BACKCHECK_LOG(kError, "store_write_failed").Str("store", "postgres").Str("database", where_)
          .Str("error", "the store writer failed").Str("type", typeid(e).name());
      for (auto& job : batch) FailJob(job);
    }
    Settle();
    batch.clear();
    if (stopping) {
      std::lock_guard lock(queue_mutex_);
      if (queue_.empty()) return;  // everything queued is committed (or failed)
    }
  }
}

void PostgresStore::FailJob(Job& job) {
  if (auto* w = std::get_if<Write>(&job)) {
    if (w->record.escalation) {
      w->record.escalation->id = 0;
      std::lock_guard lock(queue_mutex_);
      retry_.push_back(std::move(*w->record.escalation));
    }
    settling_.push_back({std::move(w->done), {}, CommitResult::kUnavailable, std::nullopt});
  } else if (auto* a = std::get_if<Ack>(&job)) {
    settling_.push_back({{}, std::move(a->done), CommitResult::kUnavailable, std::nullopt});
  }
  job = Finished{};
}

void PostgresStore::Settle() {
  if (settling_.empty()) return;
  const auto run = [](std::vector<Settling>& all) {
    for (auto& s : all) {
      if (s.done) {
        Guarded("commit", [&] { s.done(s.result, s.escalation); });
      } else if (s.acknowledged) {
        Guarded("acknowledge", [&] { s.acknowledged(s.result == CommitResult::kCommitted); });
      }
    }
  };
  if (!complete_on_) {
    std::vector<Settling> all;
    all.swap(settling_);
    run(all);
    return;
  }
  // One hand-off for the batch, in the order the records were queued.
  auto all = std::make_shared<std::vector<Settling>>(std::move(settling_));
  settling_.clear();
  Guarded("completion hand-off", [&] { complete_on_([all, run] { run(*all); }); });
}

void PostgresStore::SetUnhealthy(const std::string& why) {
  bool was;
  {
    std::lock_guard lock(queue_mutex_);
    was = healthy_.exchange(false);
  }
  if (was) {  // said once per outage; the writer retries quietly
    BACKCHECK_LOG(kError, "store_write_failed").Str("store", "postgres").Str("database", where_).Str("error", why)
        .Str("then", "turns get store_unavailable and escalations are kept for a retry until it is back");
  }
  writer_backoff_.Failed(options_);
  if (writer_conn_ && writer_conn_->Bad()) writer_conn_.reset();
}

void PostgresStore::WriteBatch(std::vector<Job>& batch) {
  // Conversations in id order (stable: one conversation's records keep theirs), so two instances'
  // batches lock rows in the same order and do not deadlock.
  std::vector<Job*> order;
  order.reserve(batch.size());
  for (auto& job : batch) order.push_back(&job);
  std::stable_sort(order.begin(), order.end(), [](const Job* a, const Job* b) {
    const auto* wa = std::get_if<Write>(a);
    const auto* wb = std::get_if<Write>(b);
    if (!wa || !wb) return wa != nullptr && wb == nullptr;  // writes first, then acks and purges
    return wa->record.conversation < wb->record.conversation;
  });
  for (std::size_t i = 0; i < order.size(); i += options_.max_batch) {
    std::vector<Job*> chunk(order.begin() + static_cast<std::ptrdiff_t>(i),
                            order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), i + options_.max_batch)));
    if (!healthy_.load()) {
      for (auto* job : chunk) FailJob(*job);
      continue;
    }
    if (!WriterConnected()) {
      SetUnhealthy("the connection is closed and a new one cannot be made");
      for (auto* job : chunk) FailJob(*job);
      continue;
    }
    if (CommitChunk(chunk)) continue;
    if (!writer_conn_ || writer_conn_->Broken()) {  // the database went away: nothing of it counts
      SetUnhealthy(writer_conn_ ? writer_conn_->Error() : "the connection failed");
      writer_conn_.reset();
      for (auto* job : chunk) FailJob(*job);
      continue;
    }
    // An error with the connection up (a deadlock, a refused text): each record alone, so one
    // does not fail the others. If none gets an answer, writes do not work (a full disk).
    bool answered = false;
    for (auto* job : chunk) answered = CommitAlone(*job) || answered;
    if (!answered && healthy_.load()) SetUnhealthy("no record of a failed batch could be written alone either");
  }
}

// The array parameters of one "apply" statement (kApplySql's, in its order). The writer keeps one
// per statement of a batch and reuses them: after the first batches, building one allocates
// nothing per record (the state's JSON and the flags are written straight into their arrays).
struct PostgresStore::Arrays {
  std::array<ArrayParam, kApplyParams> columns;

  void Reset() {
    static constexpr std::array<Oid, kApplyParams> kElements = {kText, kBool, kInt8, kInt8, kInt8, kText, kBool,
                                                               kText, kText, kText, kText, kText, kInt8, kText, kText,
                                                               kText, kInt8, kText, kText, kText, kText,
                                                               kText, kText, kText};
    for (std::size_t i = 0; i < columns.size(); ++i) columns[i].Reset(kElements[i]);
  }
  // A create or an update, as the next element of every array; `instance` sends its event.
  void Add(TurnRecord& r, std::string_view instance) {
    auto& c = columns;
    ReplaceNul(r.user_text);
    ReplaceNul(r.reply_text);
    c[0].Text(r.conversation);
    c[1].Bool(r.kind == TurnRecord::Kind::kCreate);
    c[2].Int8(static_cast<std::int64_t>(r.expected_seq));
    c[3].Int8(static_cast<std::int64_t>(r.seq));
    c[4].Int8(r.at_ms);
    c[5].TextBy([&](std::string& out) { AppendStateJson(out, r.state); });
    c[6].Bool(r.has_turn);
    c[7].Text(r.user_text);
    c[8].Text(r.reply_text);
    if (r.escalation) {
      ReplaceNul(r.escalation->text);
      c[9].Text(knowledge::UrgencyName(r.escalation->level));
      c[10].TextBy([&](std::string& out) { AppendJsonStrings(out, r.escalation->flags); });
      c[11].Text(r.escalation->text);
      c[12].Int8(r.escalation->at_ms);
    } else {
      c[9].Text("");  // no escalation
      c[10].Text("");
      c[11].Text("");
      c[12].Int8(0);
    }
    ReplaceNul(r.client_id);
    c[13].Text(r.client_id);  // "": the message had no id
    c[14].Text(r.reply_json);
    ReplaceNul(r.reply_author);
    c[15].Text(r.reply_author);  // "": the assistant
    c[16].Int8(r.expected_revision ? static_cast<std::int64_t>(*r.expected_revision) : -1);  // -1: any
    if (r.audit) {
      ReplaceNul(r.audit->by);
      c[17].Text(r.audit->action);
      c[18].Text(r.audit->by);
    } else {
      c[17].Text("");  // no operator's action
      c[18].Text("");
    }
    // Written only when there is one; ReplaceNul: JSON escapes a NUL, so none can be in it.
    if (r.event) {
      c[19].TextBy([&](std::string& out) { out += ConversationEventJson(*r.event, instance); });
    } else {
      c[19].Text("");
    }
    ReplaceNul(r.reply_extras);  // JSON escapes a NUL; a stray one would fail the whole batch
    c[20].Text(r.reply_extras);  // "": none
    if (r.review) {  // --review: the message kept for review ("": none)
      ReplaceNul(r.review->text);
      c[21].Text(r.review->intent);
      c[22].Text(r.review->state);
      char score[32];
      std::snprintf(score, sizeof score, "%.17g", r.review->score);
      c[23].Text(score);
    } else {
      c[21].Text("");
      c[22].Text("");
      c[23].Text("0");
    }
  }
  // The statement; its parameters point into the arrays until the next Reset.
  Command Finish() {
    Params p;
    for (auto& c : columns) p.Text(c.Finish());
    return Prepared("apply", p);
  }
};

bool PostgresStore::CommitChunk(std::vector<Job*>& jobs) {
  if (!writer_conn_) return false;
  // Statement k applies the k-th record of every conversation in the chunk: one statement for the
  // whole chunk unless a conversation has several records in it (its records are adjacent and in
  // order: the chunk is in conversation order). A delete runs alone, after its round's statement.
  std::vector<std::size_t> round(jobs.size(), 0);
  std::size_t rounds = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto* w = std::get_if<Write>(jobs[i]);
    if (!w) continue;
    const auto* previous = i > 0 ? std::get_if<Write>(jobs[i - 1]) : nullptr;
    if (previous && previous->record.conversation == w->record.conversation) round[i] = round[i - 1] + 1;
    rounds = std::max(rounds, round[i] + 1);
  }
  while (arrays_.size() < rounds) arrays_.push_back(std::make_unique<Arrays>());

  // What each command after BEGIN answers for: an apply statement (records members[first,
  // first + count), in array order), or one job (jobs[first]).
  enum class Step { kApply, kDelete, kAck, kPurge };
  struct Answer {
    Step step;
    std::size_t first;
    std::size_t count;
  };
  std::vector<Command> commands;
  std::vector<Answer> answers;
  std::vector<std::size_t> members;
  members.reserve(jobs.size());
  commands.push_back(Sql("BEGIN"));
  for (std::size_t k = 0; k < rounds; ++k) {
    Arrays& arrays = *arrays_[k];
    arrays.Reset();
    const std::size_t first = members.size();
    std::size_t deletes = 0;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      auto* w = std::get_if<Write>(jobs[i]);
      if (!w || round[i] != k) continue;
      if (w->record.kind == TurnRecord::Kind::kDelete) {
        ++deletes;
        continue;
      }
      arrays.Add(w->record, instance_);
      members.push_back(i);
    }
    if (members.size() > first) {
      commands.push_back(arrays.Finish());
      answers.push_back({Step::kApply, first, members.size() - first});
    }
    for (std::size_t i = 0; deletes > 0 && i < jobs.size(); ++i) {
      auto* w = std::get_if<Write>(jobs[i]);
      if (!w || round[i] != k || w->record.kind != TurnRecord::Kind::kDelete) continue;
      Params p;
      p.Text(w->record.conversation);
      commands.push_back(Prepared("delete_empty", p));
      answers.push_back({Step::kDelete, i, 1});
    }
  }
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (auto* a = std::get_if<Ack>(jobs[i])) {
      Params p;
      p.Int8(a->id).Int8(NowMillis()).Text(a->by).Text(a->note);
      commands.push_back(Prepared("ack", p));
      answers.push_back({Step::kAck, i, 1});
    } else if (auto* purge = std::get_if<PurgeJob>(jobs[i])) {
      Params p;
      p.Int8(purge->cutoff_ms).Int8(purge->empty_cutoff_ms).Int8(purge->review_cutoff_ms);
      commands.push_back(Prepared("purge", p));
      answers.push_back({Step::kPurge, i, 1});
    }
  }
  commands.push_back(Sql("COMMIT"));
  std::vector<Result> results;
  const bool sent = writer_conn_->Pipeline(commands, results);
  if (!sent || !std::all_of(results.begin(), results.end(), [](const Result& r) { return Ok(r); })) {
    if (!sent) return false;  // the caller sees the connection bad, or drops it
    if (!writer_conn_->RollbackIfOpen()) {
      writer_conn_.reset();
      return false;
    }
    for (const auto& r : results) {
      if (!Ok(r) && PQresultStatus(r.get()) != PGRES_PIPELINE_ABORTED) {
        BACKCHECK_LOG(kWarn, "store_transaction_failed").Str("store", "postgres").Str("database", where_)
            .Uint("records", jobs.size()).Str("error", ResultError(r))
            .OptStr("then", jobs.size() > 1 ? "its records are tried one by one" : nullptr);
        break;
      }
    }
    return false;
  }
  commits_.fetch_add(1);
  // Which records were written (the rest of the writes conflicted), with their escalations' ids.
  std::vector<char> written(jobs.size(), 0);
  std::vector<std::int64_t> escalation_ids(jobs.size(), 0);
  bool purged = false;
  for (std::size_t s = 0; s < answers.size(); ++s) {
    const Answer& answer = answers[s];
    PGresult* result = results[s + 1].get();  // results[0] is BEGIN's
    switch (answer.step) {
      case Step::kApply:
        for (int row = 0; row < PQntuples(result); ++row) {
          const auto i = std::strtoull(PQgetvalue(result, row, 0), nullptr, 10);
          if (i < 1 || i > answer.count) continue;  // cannot happen: the statement numbers its records
          const std::size_t job = members[answer.first + i - 1];
          written[job] = 1;
          if (!PQgetisnull(result, row, 1)) escalation_ids[job] = std::strtoll(PQgetvalue(result, row, 1), nullptr, 10);
        }
        break;
      case Step::kDelete:
        written[answer.first] = std::strtoll(PQgetvalue(result, 0, 0), nullptr, 10) == 1;
        break;
      case Step::kAck:
        written[answer.first] = PQntuples(result) == 1;
        break;
      case Step::kPurge:
        purged = true;
        break;
    }
  }
  // Completions in the order the records were queued (the batch's order, which jobs point into).
  std::vector<std::size_t> order(jobs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return jobs[a] < jobs[b]; });
  for (std::size_t i : order) {
    Job* job = jobs[i];
    if (auto* w = std::get_if<Write>(job)) {
      auto& r = w->record;
      if (r.kind == TurnRecord::Kind::kDelete) {
        if (written[i] && count_.load() > 0) count_.fetch_sub(1);
        committed_records_.fetch_add(1);
        settling_.push_back({std::move(w->done), {}, CommitResult::kCommitted, std::nullopt});
      } else if (!written[i]) {
        settling_.push_back({std::move(w->done), {}, CommitResult::kConflict, std::nullopt});
      } else {
        committed_records_.fetch_add(1);
        if (r.kind == TurnRecord::Kind::kCreate) count_.fetch_add(1);
        if (r.escalation) {
          r.escalation->id = escalation_ids[i];
          r.escalation->conversation = r.conversation;
          Deliver(*r.escalation);
        }
        settling_.push_back({std::move(w->done), {}, CommitResult::kCommitted, std::move(r.escalation)});
      }
    } else if (auto* a = std::get_if<Ack>(job)) {
      const bool found = written[i] != 0;
      committed_records_.fetch_add(1);
      if (found) Acknowledged(a->id, a->by);
      settling_.push_back({{}, std::move(a->done), found ? CommitResult::kCommitted : CommitResult::kConflict, std::nullopt});
    }
    *job = Finished{};
  }
  if (purged) RefreshCount(*writer_conn_);
  return true;
}

bool PostgresStore::WriterConnected() {
  if (writer_conn_ && !writer_conn_->Stale()) return true;
  // Closed while idle (a restarted server closes every connection): nothing was sent on it, so
  // a new connection loses nothing. One attempt; the back-off is for after a failure.
  writer_conn_.reset();
  std::string error;
  auto c = Connection::Open(url_, options_, error);
  if (!c || !PrepareAll(c->get())) return false;
  writer_conn_ = std::move(c);
  return true;
}

bool PostgresStore::CommitAlone(Job& job) {
  if (std::holds_alternative<Finished>(job)) return true;
  std::vector<Job*> one{&job};
  if (writer_conn_ && CommitChunk(one)) return true;
  if (writer_conn_ && writer_conn_->Broken()) {
    SetUnhealthy(writer_conn_->Error());
    writer_conn_.reset();
  }
  FailJob(job);
  return false;
}

void PostgresStore::RetryEscalations() {
  std::vector<EscalationEvent> pending;
  {
    std::lock_guard lock(queue_mutex_);
    pending.swap(retry_);
  }
  if (pending.empty()) return;
  // Each alone, autocommit: one the database refuses does not hold up the others.
  std::vector<EscalationEvent> kept;
  for (auto& e : pending) {
    if (!writer_conn_ || writer_conn_->Broken()) {
      kept.push_back(std::move(e));
      continue;
    }
    const std::string flags = nlohmann::json(e.flags).dump();
    MakeStorable(e.text);
    MakeStorable(e.conversation);
    Params p;
    p.Text(e.conversation).Text(knowledge::UrgencyName(e.level)).Text(flags).Text(e.text).Int8(e.at_ms);
    Result r = writer_conn_->Run("escalation", p);
    if (!Ok(r) || PQntuples(r.get()) != 1) {
      kept.push_back(std::move(e));
      continue;
    }
    e.id = Int(r, 0, 0);
    Deliver(e);
  }
  if (kept.empty()) {
    retry_backoff_.Succeeded();
    return;
  }
  {
    std::lock_guard lock(queue_mutex_);
    retry_.insert(retry_.begin(), std::make_move_iterator(kept.begin()), std::make_move_iterator(kept.end()));
  }
  retry_backoff_.Failed(options_);
  if (writer_conn_ && writer_conn_->Broken()) SetUnhealthy(writer_conn_->Error());
}

void PostgresStore::Recover() {
  if (!writer_conn_ || writer_conn_->Bad()) {
    writer_conn_.reset();
    std::string error;
    auto c = Connection::Open(url_, options_, error);
    if (!c || !PrepareAll(c->get())) {
      writer_backoff_.Failed(options_);
      return;
    }
    writer_conn_ = std::move(c);
  }
  Params p;
  p.Int8(NowMillis());
  if (!Ok(writer_conn_->Run("probe", p))) {  // autocommit: a write that works
    if (writer_conn_->Bad()) writer_conn_.reset();
    writer_backoff_.Failed(options_);
    return;
  }
  {
    std::lock_guard lock(queue_mutex_);
    healthy_.store(true);
  }
  writer_backoff_.Succeeded();
  retry_backoff_.Succeeded();
  BACKCHECK_LOG(kInfo, "store_recovered").Str("store", "postgres").Str("database", where_)
      .Str("then", "writes work again");
  RetryEscalations();
  RefreshCount(*writer_conn_);
}

void PostgresStore::RefreshCount(Connection& c) {
  Result r = c.Run("count");
  if (Ok(r) && PQntuples(r.get()) == 1) count_.store(static_cast<std::size_t>(Int(r, 0, 0)));
}

void PostgresStore::RequestProbe() {
  {
    std::lock_guard lock(queue_mutex_);
    probe_requested_ = true;
  }
  queue_cv_.notify_one();
}

// ---------------------------------------------------------------------------------------------
// The readers

void PostgresStore::Load(std::string id, std::function<void(Loaded)> done) {
  {
    std::lock_guard lock(read_mutex_);
    reads_.push_back(LoadJob{std::move(id), std::move(done)});
  }
  read_cv_.notify_one();
}

void PostgresStore::History(std::string id, std::optional<std::uint64_t> before, std::size_t turns,
                            std::function<void(std::optional<HistoryPage>)> done) {
  {
    std::lock_guard lock(read_mutex_);
    reads_.push_back(HistoryJob{std::move(id), before, turns, std::move(done)});
  }
  read_cv_.notify_one();
}

void PostgresStore::Audit(std::string id, std::function<void(std::optional<std::vector<AuditEntry>>)> done) {
  {
    std::lock_guard lock(read_mutex_);
    reads_.push_back(AuditJob{std::move(id), std::move(done)});
  }
  read_cv_.notify_one();
}

void PostgresStore::FindReply(std::string id, std::string client_id, std::function<void(StoredReply)> done) {
  {
    std::lock_guard lock(read_mutex_);
    reads_.push_back(ReplyJob{std::move(id), std::move(client_id), std::move(done)});
  }
  read_cv_.notify_one();
}

void PostgresStore::ReaderLoop(std::unique_ptr<Connection> c) {
  Backoff backoff;
  while (true) {
    std::optional<ReadJob> job;
    {
      std::unique_lock lock(read_mutex_);
      read_cv_.wait(lock, [&] { return reads_stopping_ || !reads_.empty(); });
      if (reads_.empty()) return;
      job.emplace(std::move(reads_.front()));
      reads_.pop_front();
    }
    RunRead(c, backoff, *job);
  }
}

namespace {

// The conversation row and (for `raise`) its escalations, in one round trip. nullopt: the read
// failed.
std::optional<Loaded> ReadConversation(PostgresStore::Connection& c, const std::string& id, const RaiseUrgency& raise,
                                       const std::string& where) {
  Params p;
  p.Text(id);
  std::vector<Command> commands{Prepared("load", p)};
  if (raise) commands.push_back(Prepared("load_escalations", p));
  std::vector<Result> results;
  if (!c.Pipeline(commands, results) || !std::all_of(results.begin(), results.end(), [](const Result& r) { return Ok(r); })) {
    return std::nullopt;
  }
  Loaded loaded;
  if (PQntuples(results[0].get()) != 1) return loaded;  // not found
  auto& s = loaded.conversation;
  s.id = id;
  try {
    s.state = nlohmann::json::parse(Value(results[0], 0, 0)).get<dialog::ConversationState>();
  } catch (const std::exception&) {
    // Not e.what(): it may quote the state.
    BACKCHECK_LOG(kError, "conversation_unreadable").Str("store", "postgres").Str("database", where)
        .Str("conversation", log::ConversationRef(id));
    return std::nullopt;
  }
  s.seq = static_cast<std::uint64_t>(Int(results[0], 0, 1));
  s.last_active_ms = Int(results[0], 0, 2);
  s.revision = static_cast<std::uint64_t>(Int(results[0], 0, 3));
  loaded.status = Loaded::Status::kFound;
  // Urgency never goes down: an escalation may be durable when its turn is not.
  for (int i = 0; raise && i < PQntuples(results[1].get()); ++i) {
    EscalationEvent e;
    e.conversation = id;
    e.level = knowledge::ParseUrgency(Value(results[1], i, 0)).value_or(knowledge::Urgency::kUrgent);
    e.flags = FlagsFromJson(Value(results[1], i, 1));
    raise(s.state, e);
  }
  return loaded;
}

std::optional<HistoryPage> ReadHistory(PostgresStore::Connection& c, const std::string& id,
                                       std::optional<std::uint64_t> before, std::size_t turns) {
  Params p;
  p.Text(id);
  Result last = c.Run("last_seq", p);
  if (!Ok(last)) return std::nullopt;
  HistoryPage page;
  if (PQntuples(last.get()) != 1) return page;  // no such conversation: no turns
  const HistoryRange range = RangeOf(static_cast<std::uint64_t>(Int(last, 0, 0)), before, turns);
  Params q;
  q.Text(id).Int8(static_cast<std::int64_t>(range.first)).Int8(static_cast<std::int64_t>(range.end));
  Result rows = c.Run("history", q);
  if (!Ok(rows)) return std::nullopt;
  // The user's message before its reply: 'user' sorts after 'assistant' and 'operator'.
  for (int i = 0; i < PQntuples(rows.get()); ++i) {
    page.entries.push_back(HistoryEntry{Value(rows, i, 1), Value(rows, i, 2), static_cast<std::uint64_t>(Int(rows, i, 0)),
                                        Value(rows, i, 3), Value(rows, i, 4)});
  }
  page.more = range.more;
  return page;
}

std::optional<StoredReply> ReadReply(PostgresStore::Connection& c, const std::string& id, std::string client_id) {
  ReplaceNul(client_id);  // as it was written
  Params p;
  p.Text(id).Text(client_id);
  Result r = c.Run("find_reply", p);
  if (!Ok(r)) return std::nullopt;
  StoredReply found;
  if (PQntuples(r.get()) == 1) {
    found.status = StoredReply::Status::kFound;
    found.seq = static_cast<std::uint64_t>(Int(r, 0, 0));
    found.reply_json = Value(r, 0, 1);
  }
  return found;
}

std::optional<std::vector<AuditEntry>> ReadAudit(PostgresStore::Connection& c, const std::string& id) {
  Params p;
  p.Text(id).Int8(static_cast<std::int64_t>(kMaxAuditEntries));
  Result r = c.Run("audit", p);
  if (!Ok(r)) return std::nullopt;
  std::vector<AuditEntry> entries;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    entries.push_back(AuditEntry{id, Value(r, i, 0), Value(r, i, 1), static_cast<std::uint64_t>(Int(r, i, 2)),
                                 Int(r, i, 3), Int(r, i, 4), Value(r, i, 5)});
  }
  return entries;
}

}  // namespace

void PostgresStore::RunRead(std::unique_ptr<Connection>& c, Backoff& backoff, ReadJob& job) {
  std::optional<Loaded> loaded;
  std::optional<HistoryPage> page;
  std::optional<StoredReply> reply;
  std::optional<std::vector<AuditEntry>> audit;
  try {
    // Closed while idle (a restarted server closes every connection): nothing was sent on it, so
    // a new one at once loses nothing. Otherwise between failed attempts, fail fast.
    const bool stale = !c || c->Stale();
    if (stale && (c || backoff.Due())) {
      c.reset();
      std::string error;
      c = Connection::Open(url_, options_, error);
      if (c && !PrepareAll(c->get())) c.reset();
      if (c) {
        backoff.Succeeded();
      } else {
        backoff.Failed(options_);
      }
    } else if (stale) {
      c.reset();
    }
    if (c) {
      if (auto* l = std::get_if<LoadJob>(&job)) {
        loaded = ReadConversation(*c, l->id, raise_, where_);
      } else if (auto* h = std::get_if<HistoryJob>(&job)) {
        page = ReadHistory(*c, h->id, h->before, h->turns);
      } else if (auto* f = std::get_if<ReplyJob>(&job)) {
        reply = ReadReply(*c, f->id, f->client_id);
      } else if (auto* a = std::get_if<AuditJob>(&job)) {
        audit = ReadAudit(*c, a->id);
      }
      if (!loaded && !page && !reply && !audit && c->Broken()) {
        c.reset();
        backoff.Failed(options_);
      }
    }
  } catch (const std::exception& e) {
    BACKCHECK_LOG(kError, "store_read_failed").Str("store", "postgres").Str("database", where_).Str("error", e.what());
  }
  if (auto* l = std::get_if<LoadJob>(&job)) {
    Guarded("load", [&] { l->done(loaded ? std::move(*loaded) : Loaded{Loaded::Status::kUnavailable, {}}); });
  } else if (auto* h = std::get_if<HistoryJob>(&job)) {
    Guarded("history", [&] { h->done(std::move(page)); });
  } else if (auto* f = std::get_if<ReplyJob>(&job)) {
    Guarded("find_reply", [&] { f->done(reply ? std::move(*reply) : StoredReply{StoredReply::Status::kUnavailable}); });
  } else if (auto* a = std::get_if<AuditJob>(&job)) {
    Guarded("audit", [&] { a->done(std::move(audit)); });
  }
}

// ---------------------------------------------------------------------------------------------
// The listener and the in-memory copy of the log

std::vector<EscalationEvent> PostgresStore::Unacknowledged(std::int64_t after_id, std::size_t limit) const {
  return backlog_.Page(after_id, limit);
}

std::size_t PostgresStore::UnacknowledgedCount() const { return backlog_.Size(); }

void PostgresStore::Subscribe(Listener listener) {
  std::lock_guard lock(log_mutex_);
  listener_ = std::move(listener);
}

bool PostgresStore::Deliver(const EscalationEvent& event) {
  // One publisher at a time, held across the call: when the writer finds an id the listener
  // thread added first, that id has been published before the writer answers the turn, so an
  // operator never sees a later escalation (or the reply's next one) before it.
  std::lock_guard publishing(publish_mutex_);
  std::function<void(const EscalationEvent&)> call;
  {
    std::lock_guard lock(log_mutex_);
    if (acked_.count(event.id) || !backlog_.Add(event)) return false;
    call = listener_.escalation;
  }
  if (call) Guarded("escalation", [&] { call(event); });
  return true;
}

void PostgresStore::OnOtherInstances(std::function<void(const ConversationEvent&)> listener) {
  std::lock_guard lock(log_mutex_);
  events_listener_ = std::move(listener);
}

void PostgresStore::OtherInstanceEvent(std::string_view payload) {
  auto received = ParseConversationEvent(payload);
  if (!received || received->instance == instance_) return;  // ours was announced here already
  std::function<void(const ConversationEvent&)> call;
  {
    std::lock_guard lock(log_mutex_);
    call = events_listener_;
  }
  if (call) Guarded("conversation event", [&] { call(received->event); });
}

void PostgresStore::Acknowledged(std::int64_t id, const std::string& by) {
  std::lock_guard publishing(publish_mutex_);  // as Deliver: announced before this returns
  std::function<void(const EscalationEvent&, const std::string&)> call;
  std::optional<EscalationEvent> event;
  {
    std::lock_guard lock(log_mutex_);
    event = backlog_.Take(id);
    if (!event) return;  // announced already, or never seen here
    acked_[id] = Clock::now();
    call = listener_.acknowledged;
  }
  if (call) Guarded("acknowledged", [&] { call(*event, by); });
}

bool PostgresStore::StartListening(Connection& c) {
  return Ok(c.Exec("LISTEN backcheck_escalations")) && Ok(c.Exec("LISTEN backcheck_acks")) &&
         Ok(c.Exec("LISTEN backcheck_events"));
}

bool PostgresStore::Refresh(Connection& c) {
  // What this instance holds now: an id delivered after this snapshot is not taken for acked.
  const std::vector<std::int64_t> held = backlog_.Ids();
  {
    std::lock_guard lock(log_mutex_);
    const auto now = Clock::now();
    std::erase_if(acked_, [&](const auto& entry) { return now - entry.second > kTombstoneLife; });
  }
  Result ids = c.Run("unacked_ids");
  if (!Ok(ids)) return !c.Bad();
  std::set<std::int64_t> unacked;
  std::vector<std::int64_t> fresh;
  for (int i = 0; i < PQntuples(ids.get()); ++i) {
    const std::int64_t id = Int(ids, i, 0);
    unacked.insert(id);
    if (!std::binary_search(held.begin(), held.end(), id)) fresh.push_back(id);
  }
  if (!fresh.empty()) {
    const std::string array = IdArray(fresh);
    Params p;
    p.TextFormat(array);
    Result rows = c.Run("escalations_by_id", p);
    if (!Ok(rows)) return !c.Bad();
    for (int i = 0; i < PQntuples(rows.get()); ++i) {
      EscalationEvent e;
      e.id = Int(rows, i, 0);
      e.conversation = Value(rows, i, 1);
      e.level = knowledge::ParseUrgency(Value(rows, i, 2)).value_or(knowledge::Urgency::kUrgent);
      e.flags = FlagsFromJson(Value(rows, i, 3));
      e.text = Value(rows, i, 4);
      e.at_ms = Int(rows, i, 5);
      Deliver(e);
    }
  }
  // Held but no longer unacknowledged: acknowledged, probably; the table says by whom.
  std::vector<std::int64_t> gone;
  for (std::int64_t id : held) {
    if (!unacked.count(id)) gone.push_back(id);
  }
  if (!gone.empty()) {
    const std::string array = IdArray(gone);
    Params p;
    p.TextFormat(array);
    Result rows = c.Run("acked_by_id", p);
    if (!Ok(rows)) return !c.Bad();
    for (int i = 0; i < PQntuples(rows.get()); ++i) Acknowledged(Int(rows, i, 0), Value(rows, i, 1));
  }
  return true;
}

void PostgresStore::ListenerLoop() {
  Backoff backoff;
  auto last_refresh = Clock::now();
  auto last_count = Clock::now();
  while (true) {
    try {
      if (!listen_conn_) {
        if (backoff.Due()) {
          std::string error;
          listen_conn_ = Connection::Open(url_, options_, error);
          // Notifications sent while we were away are lost: re-read the table right away.
          if (listen_conn_ && PrepareAll(listen_conn_->get()) && StartListening(*listen_conn_) &&
              Refresh(*listen_conn_)) {
            backoff.Succeeded();
            last_refresh = Clock::now();
          } else {
            listen_conn_.reset();
            backoff.Failed(options_);
            RequestProbe();  // the database may have gone while we were reconnecting
          }
        }
      }
      auto timeout = options_.poll_interval;
      if (!listen_conn_) {
        timeout = std::max(std::chrono::milliseconds(1),
                           std::chrono::duration_cast<std::chrono::milliseconds>(backoff.next - Clock::now()));
      }
      pollfd fds[2] = {{wake_[0], POLLIN, 0}, {listen_conn_ ? PQsocket(listen_conn_->get()) : -1, POLLIN, 0}};
      const int n = poll(fds, 2, static_cast<int>(std::min<std::int64_t>(timeout.count(), 60000)));
      if (n > 0 && (fds[0].revents & POLLIN)) return;  // stopping
      if (!listen_conn_) continue;
      bool notified = false;
      if (n > 0 && fds[1].revents != 0) {
        if (PQconsumeInput(listen_conn_->get()) != 1 || listen_conn_->Bad()) {
          listen_conn_.reset();
          backoff.Failed(options_);
          RequestProbe();
          continue;
        }
        while (PGnotify* note = PQnotifies(listen_conn_->get())) {
          if (std::string_view(note->relname) == "backcheck_events") {
            OtherInstanceEvent(note->extra ? note->extra : "");
          } else {
            notified = true;  // an escalation or an ack: the table says which
          }
          PQfreemem(note);
        }
      }
      if (notified || Clock::now() - last_refresh >= options_.poll_interval) {
        last_refresh = Clock::now();
        if (!Refresh(*listen_conn_) || listen_conn_->Bad()) {
          listen_conn_.reset();
          backoff.Failed(options_);
          continue;
        }
      }
      if (Clock::now() - last_count >= options_.count_interval) {
        last_count = Clock::now();
        RefreshCount(*listen_conn_);
      }
    } catch (const std::exception& e) {
      BACKCHECK_LOG(kError, "store_listener_failed").Str("store", "postgres").Str("database", where_)
          .Str("listener", "escalations").Str("error", e.what());
      listen_conn_.reset();
      backoff.Failed(options_);
    }
  }
}

}  // namespace backcheck::server
