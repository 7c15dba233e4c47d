// Named operators (--operators) and their browser sign-ins: who may act, under which name.
#include <catch2/catch.hpp>

#include "server/operator_accounts.hpp"
#include "server/operator_sign_ins.hpp"

using namespace backcheck::server;
using namespace std::chrono_literals;

TEST_CASE("an operators file names each operator by the hash of their token", "[operators]") {
  const auto alice = OperatorAccounts::Make("alice");
  const auto bob = OperatorAccounts::Make("bob");
  CHECK(alice.token.size() == 64);
  CHECK(alice.token != bob.token);
  CHECK(alice.line == "alice " + OperatorAccounts::HashToken(alice.token));
  CHECK(alice.line.find(alice.token) == std::string::npos);  // the file never holds the token
  const auto accounts = OperatorAccounts::Parse("# the clinic\n" + alice.line + "\n\n" + bob.line + "  # nights\n", "ops");
  CHECK(accounts.Authenticate(alice.token) == "alice");
  CHECK(accounts.Authenticate(bob.token) == "bob");
  CHECK(accounts.AuthenticateBearer("Bearer " + bob.token) == "bob");
  CHECK_FALSE(accounts.Authenticate(alice.token.substr(1)));
  CHECK_FALSE(accounts.Authenticate(""));
  CHECK_FALSE(accounts.AuthenticateBearer(alice.token));  // no scheme
  CHECK_FALSE(accounts.Authenticate(OperatorAccounts::HashToken(alice.token)));  // the hash is not a token
}

TEST_CASE("CHAT_OPERATOR_TOKEN is one unnamed operator beside the named ones", "[operators]") {
  OperatorAccounts accounts;
  CHECK(accounts.empty());
  accounts.AddUnnamed("quick-token-for-one-machine");
  CHECK(accounts.Authenticate("quick-token-for-one-machine") == std::string(OperatorAccounts::kUnnamed));
  accounts.AddUnnamed("");
  CHECK_FALSE(accounts.Authenticate(""));
}

TEST_CASE("a malformed operators file is refused at its line", "[operators]") {
  const auto alice = OperatorAccounts::Make("alice");
  const std::string hash = OperatorAccounts::HashToken(alice.token);
  CHECK_THROWS_WITH(OperatorAccounts::Parse("alice\n", "ops"), Catch::StartsWith("ops:1: expected 'name sha256:HASH'"));
  CHECK_THROWS_WITH(OperatorAccounts::Parse("# x\nalice " + alice.token + "\n", "ops"),
                    Catch::StartsWith("ops:2: the hash of 'alice' is not sha256:") &&
                        Catch::Contains("--new-operator alice"));
  CHECK_THROWS_WITH(OperatorAccounts::Parse("alice sha256:" + std::string(64, 'G') + "\n", "ops"),
                    Catch::Contains("64 lowercase hex"));
  CHECK_THROWS_WITH(OperatorAccounts::Parse("alice " + hash + "\nalice " + OperatorAccounts::HashToken("x") + "\n", "ops"),
                    Catch::StartsWith("ops:2: 'alice' is named twice"));
  CHECK_THROWS_WITH(OperatorAccounts::Parse("alice " + hash + "\nbob " + hash + "\n", "ops"),
                    Catch::Contains("same token as 'alice'"));
  CHECK_THROWS_WITH(OperatorAccounts::Parse("dr alice " + hash + "\n", "ops"), Catch::Contains("nothing after"));
  CHECK_THROWS_AS(OperatorAccounts::Make("dr/alice"), OperatorAccountsError);
}

TEST_CASE("a sign-in lasts its time, names its operator, and ends on sign-out", "[operators]") {
  OperatorSignIns sign_ins(3600s, 8);
  const auto t0 = OperatorSignIns::Clock::now();
  const std::string id = sign_ins.Create("alice", t0);
  const std::string cookie = "theme=dark; backcheck_operator=" + id + "; other=1";
  CHECK(sign_ins.Find(cookie, t0 + 3599s) == "alice");
  CHECK_FALSE(sign_ins.Find(cookie, t0 + 3600s));
  CHECK_FALSE(sign_ins.Find("backcheck_operator=" + id.substr(1), t0));
  CHECK_FALSE(sign_ins.Find("", t0));
  sign_ins.Revoke(cookie);
  CHECK_FALSE(sign_ins.Find(cookie, t0));
  const std::string set = sign_ins.SetCookie(id, true);
  CHECK_THAT(set, Catch::StartsWith("backcheck_operator=" + id + "; Path=/; Max-Age=3600") &&
                      Catch::Contains("; HttpOnly") && Catch::Contains("; SameSite=Strict") && Catch::EndsWith("; Secure"));
  CHECK_THAT(sign_ins.SetCookie(id, false), !Catch::Contains("Secure"));
  CHECK_THAT(OperatorSignIns::ClearCookie(false), Catch::Contains("Max-Age=0"));
}

TEST_CASE("sign-ins are bounded: past the limit the one that expires soonest ends", "[operators]") {
  OperatorSignIns sign_ins(3600s, 2);
  const auto t0 = OperatorSignIns::Clock::now();
  const auto first = sign_ins.Create("a", t0);
  const auto second = sign_ins.Create("b", t0 + 1s);
  const auto third = sign_ins.Create("c", t0 + 2s);
  CHECK_FALSE(sign_ins.Find("backcheck_operator=" + first, t0 + 3s));
  CHECK(sign_ins.Find("backcheck_operator=" + second, t0 + 3s) == "b");
  CHECK(sign_ins.Find("backcheck_operator=" + third, t0 + 3s) == "c");
}
