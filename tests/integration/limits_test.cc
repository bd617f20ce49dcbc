// Connection budgets: over MAX_CONNECTIONS a new connection is accepted and closed at once; when
// MAX_UNAUTH_CONNECTIONS or a source's MAX_UNAUTH_PER_SOURCE is full, the oldest connection still
// waiting to authenticate is closed to make room. Everyone authenticated carries on.
#include <memory>
#include <vector>

#include "integration/integration_test.h"

namespace tickwire::testing {
namespace {

class LimitsTest : public IntegrationTest {};

// Regression (one address could hold every unauthenticated slot, and every new connection was
// then closed at once: nobody could log in until it let go): the oldest waiting connection makes
// room for the new one.
TEST_F(LimitsTest, FullUnauthenticatedBudgetEvictsTheOldestWaitingConnection) {
  ASSERT_TRUE(Start({{"MAX_UNAUTH_CONNECTIONS", "3"}}));
  std::vector<std::unique_ptr<RawClient>> waiting;
  for (int i = 0; i < 3; ++i) {
    waiting.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(Connect(*waiting.back()));
    // Admitted in this order (each is seen by the server before the next connects).
    ASSERT_TRUE(WaitUntil([&] { return Get(Scrape(), "active_connections") == i + 1; },
                          milliseconds(5000)));
  }
  RawClient next;
  ASSERT_TRUE(Connect(next));
  EXPECT_TRUE(waiting[0]->ExpectClosed(milliseconds(3000))) << "the oldest made room";
  EXPECT_TRUE(next.Authenticate(ServerProcess::kUser, ServerProcess::kPass));
  EXPECT_TRUE(waiting[1]->Authenticate(ServerProcess::kUser, ServerProcess::kPass))
      << "the others still waiting are served";
  EXPECT_TRUE(Reaches("connection_drops_total{reason=\"unauth_evicted\"}", 1));
  const Metrics m = Scrape();
  EXPECT_EQ(Get(m, "connections_rejected_total{limit=\"max_unauth_connections\"}"), 1);
  EXPECT_EQ(Get(m, "connections_rejected_total{limit=\"max_connections\"}"), 0);
  // An authenticated connection is never evicted.
  std::vector<std::unique_ptr<RawClient>> more;
  for (int i = 0; i < 4; ++i) {
    more.push_back(std::make_unique<RawClient>());
    ASSERT_TRUE(Connect(*more.back()));
  }
  EXPECT_TRUE(next.HeartbeatRoundTrip(1));
  EXPECT_TRUE(waiting[1]->HeartbeatRoundTrip(2));
}

TEST_F(LimitsTest, OneSourceCannotCrowdOutTheOthers) {
  ASSERT_TRUE(Start({{"LISTEN_ADDR", "0.0.0.0:0"},
                     {"MAX_UNAUTH_CONNECTIONS", "8"},
                     {"MAX_UNAUTH_PER_SOURCE", "3"}}));
  // Someone else is in the middle of connecting.
  RawClient other;
  other.SetSourceAddress("127.0.0.1");
  ASSERT_TRUE(other.Connect(server_->port()));
  // One address opens 20 connections and sends nothing: it only ever keeps its newest three.
  std::vector<std::unique_ptr<RawClient>> flood;
  for (int i = 0; i < 20; ++i) {
    flood.push_back(std::make_unique<RawClient>());
    flood.back()->SetSourceAddress("127.0.0.66");
    ASSERT_TRUE(flood.back()->Connect(server_->port()));
  }
  EXPECT_TRUE(Reaches("connections_rejected_total{limit=\"max_unauth_per_source\"}", 17));
  for (std::size_t i = 0; i < 17; ++i) EXPECT_TRUE(flood[i]->ExpectClosed(milliseconds(3000))) << i;
  EXPECT_TRUE(flood[19]->ExpectNothing(milliseconds(100)));
  EXPECT_TRUE(other.Authenticate(ServerProcess::kUser, ServerProcess::kPass))
      << "never evicted: the flood pays for itself";
  EXPECT_EQ(Get(Scrape(), "connections_rejected_total{limit=\"max_unauth_connections\"}"), 0);
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
