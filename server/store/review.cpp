// `backcheck review`'s access to the review entries (server/store/review.hpp): straight SQL on the
// stores' review table (SQLite migration 10, PostgreSQL migration 8), without a store object, so
// it works beside a running server (SQLite: read-only for a listing; PostgreSQL: any instance).
#include "server/store/review.hpp"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <cstdlib>
#include <memory>

#include "server/store/pg_result.hpp"

namespace backcheck::server {
namespace {

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using SqliteHandle = std::unique_ptr<sqlite3, SqliteCloser>;

SqliteHandle OpenSqlite(const std::filesystem::path& data_dir, bool write) {
  const std::filesystem::path path = data_dir / "backcheck.db";
  if (!std::filesystem::exists(path)) throw ReviewError(path.string() + ": no such database (is --data-dir right?)");
  sqlite3* raw = nullptr;
  // A read-only connection to a WAL database makes its -wal and -shm files if they are missing
  // (the server is stopped) and cannot remove them: owned by whoever ran `backcheck review`, they
  // could keep the server's user from opening the database. Without a -wal file the database is
  // whole (the server checkpoints and removes it when it stops): read it as immutable, no files.
  std::string name = path.string();
  int flags = write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
  if (!write && !std::filesystem::exists(path.string() + "-wal")) {
    std::string uri = "file:";
    for (char c : name) {
      if (c == '%' || c == '?' || c == '#') {
        static const char* hex = "0123456789ABCDEF";
        uri += '%';
        uri += hex[static_cast<unsigned char>(c) >> 4];
        uri += hex[static_cast<unsigned char>(c) & 15];
      } else {
        uri += c;
      }
    }
    name = uri + "?immutable=1";
    flags |= SQLITE_OPEN_URI;
  }
  const int rc = sqlite3_open_v2(name.c_str(), &raw, flags, nullptr);
  SqliteHandle db(raw);
  if (rc != SQLITE_OK) {
    throw ReviewError(path.string() + ": cannot be opened (" + (raw ? sqlite3_errmsg(raw) : "out of memory") + ")");
  }
  sqlite3_busy_timeout(db.get(), 5000);  // a running server's commit holds the write lock briefly
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db.get(), "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'review'", -1,
                         &s, nullptr) != SQLITE_OK ||
      sqlite3_step(s) != SQLITE_ROW) {
    std::string message = sqlite3_errmsg(db.get());
    sqlite3_finalize(s);
    throw ReviewError(path.string() + ": not a readable database (" + message + ")");
  }
  const bool has = sqlite3_column_int(s, 0) == 1;
  sqlite3_finalize(s);
  if (!has) {
    throw ReviewError(path.string() + ": no review table (an older schema): start this version's chat-server on it "
                                      "once to migrate it");
  }
  return db;
}

std::string SqliteText(sqlite3_stmt* s, int i) {
  const auto* text = sqlite3_column_text(s, i);
  return text ? std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
              : std::string();
}

struct PgCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgHandle = std::unique_ptr<PGconn, PgCloser>;
using PgResult = pg::Result;

PgHandle OpenPostgres(const std::string& url) {
  PgHandle c(PQconnectdb(url.c_str()));
  if (!c || PQstatus(c.get()) != CONNECTION_OK) {
    // libpq's message never holds the password; the URL might, so it is not repeated.
    throw ReviewError(std::string("cannot connect to the database: ") + (c ? PQerrorMessage(c.get()) : "out of memory"));
  }
  PgResult r(PQexec(c.get(), "SELECT to_regclass('review') IS NOT NULL"));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
    throw ReviewError(std::string("the database cannot be read: ") + PQerrorMessage(c.get()));
  }
  if (std::string(PQgetvalue(r.get(), 0, 0)) != "t") {
    throw ReviewError("the database has no review table (an older schema): start this version's chat-server on it "
                      "once to migrate it");
  }
  return c;
}

}  // namespace

std::vector<ReviewEntry> ReadReviewSqlite(const std::filesystem::path& data_dir) {
  SqliteHandle db = OpenSqlite(data_dir, /*write=*/false);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db.get(), "SELECT text, at, state, score, intent FROM review ORDER BY at, id", -1, &s,
                         nullptr) != SQLITE_OK) {
    throw ReviewError(std::string("cannot read the review table (") + sqlite3_errmsg(db.get()) + ")");
  }
  std::vector<ReviewEntry> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    out.push_back(ReviewEntry{SqliteText(s, 0), sqlite3_column_int64(s, 1), SqliteText(s, 2), sqlite3_column_double(s, 3),
                              SqliteText(s, 4)});
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) throw ReviewError(std::string("cannot read the review table (") + sqlite3_errstr(rc) + ")");
  return out;
}

std::int64_t DeleteReviewSqlite(const std::filesystem::path& data_dir, std::int64_t before_ms) {
  SqliteHandle db = OpenSqlite(data_dir, /*write=*/true);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db.get(), "DELETE FROM review WHERE at < ?1", -1, &s, nullptr) != SQLITE_OK) {
    throw ReviewError(std::string("cannot delete from the review table (") + sqlite3_errmsg(db.get()) + ")");
  }
  sqlite3_bind_int64(s, 1, before_ms);
  const int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) {
    throw ReviewError(std::string("cannot delete from the review table (") + sqlite3_errstr(rc) + ")");
  }
  return sqlite3_changes(db.get());
}

std::vector<ReviewEntry> ReadReviewPostgres(const std::string& url) {
  PgHandle c = OpenPostgres(url);
  PgResult r(PQexec(c.get(), "SELECT text, at, state, score, intent FROM review ORDER BY at, id"));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    throw ReviewError(std::string("cannot read the review table: ") + PQerrorMessage(c.get()));
  }
  std::vector<ReviewEntry> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    out.push_back(ReviewEntry{PQgetvalue(r.get(), i, 0), std::strtoll(PQgetvalue(r.get(), i, 1), nullptr, 10),
                              PQgetvalue(r.get(), i, 2), std::strtod(PQgetvalue(r.get(), i, 3), nullptr),
                              PQgetvalue(r.get(), i, 4)});
  }
  return out;
}

std::int64_t DeleteReviewPostgres(const std::string& url, std::int64_t before_ms) {
  PgHandle c = OpenPostgres(url);
  const std::string before = std::to_string(before_ms);
  const char* values[] = {before.c_str()};
  PgResult r(PQexecParams(c.get(), "DELETE FROM review WHERE at < $1::int8", 1, nullptr, values, nullptr, nullptr, 0));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    throw ReviewError(std::string("cannot delete from the review table: ") + PQerrorMessage(c.get()));
  }
  return std::strtoll(PQcmdTuples(r.get()), nullptr, 10);
}

}  // namespace backcheck::server
