// Connection budgets: MAX_CONNECTIONS and MAX_UNAUTH_CONNECTIONS. Over either, a new connection
// is accepted and closed at once, and everyone already connected carries on.
#include <memory>
#include <vector>

#include "integration/integration_test.h"

namespace tickwire::testing {
namespace {

class LimitsTest : public IntegrationTest {};

TEST_F(LimitsTest, UnauthenticatedFloodIsClosedAtOnceAndAuthFreesASlot) {
  ASSERT_TRUE(Start({{"MAX_UNAUTH_CONNECTIONS", "3"}}));
  std::vector<std::unique_ptr<RawClient>> waiting;
  for (int i = 0; i < 3; ++i) {
    waiting.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(Connect(*waiting.back()));
  }
  // The three hold every unauthenticated slot once the server has admitted them.
  RawClient extra;
  ASSERT_TRUE(WaitUntil(
      [&] {
        extra.Close();
        return Connect(extra) && extra.ExpectClosed(milliseconds(200));
      },
      milliseconds(5000)));
  // Waiting connections are still served: one authenticates, which frees its slot.
  ASSERT_TRUE(waiting[0]->Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  RawClient next;
  ASSERT_TRUE(WaitUntil(
      [&] {
        next.Close();
        return Connect(next) && next.ExpectNothing(milliseconds(200));
      },
      milliseconds(5000)));
  EXPECT_TRUE(next.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  EXPECT_TRUE(waiting[0]->HeartbeatRoundTrip(1));
}

TEST_F(LimitsTest, OverMaxConnectionsNewOnesAreClosedAndClosingFreesASlot) {
  ASSERT_TRUE(Start({{"MAX_CONNECTIONS", "4"}}));
  std::vector<std::unique_ptr<RawClient>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(ConnectAuthed(*clients.back()));
  }
  RawClient extra;
  ASSERT_TRUE(Connect(extra));
  EXPECT_TRUE(extra.ExpectClosed(milliseconds(2000)));
  for (auto& c : clients) EXPECT_TRUE(c->HeartbeatRoundTrip(7));
  clients[2]->Close();
  RawClient next;
  ASSERT_TRUE(WaitUntil(
      [&] {
        next.Close();
        return Connect(next) && next.ExpectNothing(milliseconds(200));
      },
      milliseconds(5000)));
  EXPECT_TRUE(next.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
}

TEST_F(LimitsTest, FailedAuthReleasesItsSlot) {
  ASSERT_TRUE(Start({{"MAX_UNAUTH_CONNECTIONS", "1"}, {"MAX_CONNECTIONS", "1"}}));
  for (int i = 0; i < 5; ++i) {
    RawClient c;
    ASSERT_TRUE(WaitUntil(
        [&] {
          c.Close();
          return Connect(c) && c.ExpectNothing(milliseconds(100));
        },
        milliseconds(5000)))
        << "attempt " << i;
    EXPECT_FALSE(c.Authenticate(ServerProcess::kUser, "wrong"));
  }
}

}  // namespace
}  // namespace tickwire::testing
