// Bridge tokens (server/bridge_tokens.hpp): which bridge a bearer token names, and which files
// are refused.
#include <catch2/catch.hpp>

#include "server/bridge_tokens.hpp"

using backcheck::server::BridgeTokens;
using backcheck::server::BridgeTokensError;

namespace {
const std::string kSlack(40, 's');
const std::string kDiscord = std::string(39, 'd') + "!";
}  // namespace

TEST_CASE("a bearer token names its bridge; anything else names none", "[bridges]") {
  const auto tokens = BridgeTokens::Parse("# bridges\nslack " + kSlack + "\n\ndiscord\t" + kDiscord + "  # comment\n", "f");
  CHECK(tokens.size() == 2);
  CHECK(tokens.Authenticate("Bearer " + kSlack) == "slack");
  CHECK(tokens.Authenticate("bearer " + kDiscord) == "discord");  // the scheme in any case
  CHECK_FALSE(tokens.Authenticate("Bearer " + kSlack.substr(1)));
  CHECK_FALSE(tokens.Authenticate("Bearer " + kSlack + "s"));
  CHECK_FALSE(tokens.Authenticate("Basic " + kSlack));
  CHECK_FALSE(tokens.Authenticate("Bearer"));
  CHECK_FALSE(tokens.Authenticate(kSlack));
  CHECK(BridgeTokens::IsBearer("Bearer"));
  CHECK(BridgeTokens::IsBearer("BEARER x"));
  CHECK_FALSE(BridgeTokens::IsBearer("Bearerx"));
  CHECK_FALSE(BridgeTokens::IsBearer("Basic abc"));
}

TEST_CASE("a tokens file is refused at the line that is wrong", "[bridges]") {
  CHECK_THROWS_WITH(BridgeTokens::Parse("slack " + kSlack + "\nshort abc\n", "f"), Catch::StartsWith("f:2:"));
  CHECK_THROWS_WITH(BridgeTokens::Parse("slack " + kSlack + "\nslack " + kDiscord + "\n", "f"),
                    Catch::Contains("named twice"));
  CHECK_THROWS_WITH(BridgeTokens::Parse("slack " + kSlack + "\ndiscord " + kSlack + "\n", "f"),
                    Catch::Contains("also the token of 'slack'") && !Catch::Contains(kSlack));
  CHECK_THROWS_WITH(BridgeTokens::Parse("sl/ack " + kSlack + "\n", "f"), Catch::Contains("f:1: a name is 1-64 letters"));
  CHECK_THROWS_WITH(BridgeTokens::Parse("slack " + kSlack + " extra\n", "f"), Catch::Contains("nothing after"));
  CHECK_THROWS_AS(BridgeTokens::Parse("slack\n", "f"), BridgeTokensError);
  CHECK(BridgeTokens::Parse("# nothing\n\n", "f").empty());
}
