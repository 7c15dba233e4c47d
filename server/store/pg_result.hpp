// A libpq result owned by a unique_ptr, and the few ways the PostgreSQL code reads one: shared by
// the store (postgres_store.cpp), the webhook outbox (postgres_outbox.cpp) and backcheck review
// (review.cpp), which each have their own connections. Header-only: all inline.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace backcheck::server::pg {

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// A command or a query that succeeded.
inline bool Ok(const Result& r) {
  if (!r) return false;
  const auto status = PQresultStatus(r.get());
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

// What went wrong, without the DETAIL (which may quote values): the primary message and SQLSTATE.
inline std::string ResultError(const Result& r) {
  if (!r) return "no result";
  const char* primary = PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY);
  const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
  if (!primary) return PQresStatus(PQresultStatus(r.get()));
  return std::string(primary) + (state ? std::string(" [") + state + "]" : std::string());
}

inline std::string Value(const Result& r, int row, int column) {
  return std::string(PQgetvalue(r.get(), row, column), static_cast<std::size_t>(PQgetlength(r.get(), row, column)));
}

inline std::int64_t Int(const Result& r, int row, int column) {
  return std::strtoll(PQgetvalue(r.get(), row, column), nullptr, 10);
}

}  // namespace backcheck::server::pg
