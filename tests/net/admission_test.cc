// The connection budget: MAX_CONNECTIONS refuses; the unauthenticated limits (overall and per
// source) evict the oldest waiting connection instead.
#include "net/admission.h"

#include <gtest/gtest.h>

#include <vector>

namespace tickwire::net {
namespace {

using Limit = Admission::Limit;

TEST(Admission, OverMaxConnectionsTheNewOneIsRefused) {
  Admission a;
  a.Configure(2, 10, 10);
  auto t1 = a.Admit("a:10.0.0.1", 0).ticket;
  auto t2 = a.Admit("a:10.0.0.2", 1).ticket;
  ASSERT_TRUE(t1 && t2);
  a.Authenticated(t1);
  a.Authenticated(t2);
  const auto d = a.Admit("a:10.0.0.3", 0);
  EXPECT_FALSE(d.ticket);
  EXPECT_FALSE(d.evicted);
  EXPECT_EQ(d.why, Limit::kMaxConnections);
  EXPECT_EQ(a.refused_full(), 1u);
  a.Released(t1);
  EXPECT_TRUE(a.Admit("a:10.0.0.3", 0).ticket) << "closing one frees a slot";
}

// Regression (one address could fill MAX_UNAUTH_CONNECTIONS and every new connection was then
// refused, so nobody could log in): the oldest waiting connection makes room.
TEST(Admission, FullUnauthenticatedBudgetEvictsTheOldestWaiting) {
  Admission a;
  a.Configure(100, 3, 100);
  std::vector<TicketPtr> held;
  for (int i = 0; i < 3; ++i) held.push_back(a.Admit("a:10.6.6." + std::to_string(i), 0).ticket);
  const auto d = a.Admit("a:192.0.2.1", 1);
  ASSERT_TRUE(d.ticket);
  EXPECT_EQ(d.evicted, held[0]) << "the oldest";
  EXPECT_EQ(d.why, Limit::kMaxUnauthenticated);
  EXPECT_EQ(a.unauthenticated(), 3u);
  EXPECT_EQ(a.evicted(Limit::kMaxUnauthenticated), 1u);
  // An authenticated connection is never chosen; the evicted one's own release is harmless.
  a.Authenticated(held[1]);
  a.Released(held[0]);
  EXPECT_EQ(a.open(), 3u);
  const auto e = a.Admit("a:192.0.2.2", 1);
  EXPECT_FALSE(e.evicted) << "authenticating freed a waiting slot";
  const auto f = a.Admit("a:192.0.2.3", 1);
  EXPECT_EQ(f.evicted, held[2]);
}

TEST(Admission, ASourceOverItsShareLosesItsOwnOldest) {
  Admission a;
  a.Configure(100, 100, 2);
  const auto first = a.Admit("a:10.6.6.6", 0).ticket;
  const auto second = a.Admit("a:10.6.6.6", 0).ticket;
  const auto other = a.Admit("a:192.0.2.1", 0).ticket;
  const auto d = a.Admit("a:10.6.6.6", 0);
  ASSERT_TRUE(d.ticket);
  EXPECT_EQ(d.evicted, first);
  EXPECT_EQ(d.why, Limit::kMaxUnauthPerSource);
  EXPECT_EQ(a.Admit("a:10.6.6.6", 0).evicted, second);
  EXPECT_EQ(a.evicted(Limit::kMaxUnauthPerSource), 2u);
  EXPECT_EQ(a.unauthenticated(), 3u) << "other + the source's newest two";
  EXPECT_TRUE(other->waiting);
}

TEST(Admission, BehindAProxyTheSourceCountsOnceTheHeaderIsRead) {
  Admission a;
  a.Configure(100, 100, 1);
  const auto t1 = a.Admit("", 0).ticket;  // the balancer's address is not counted
  const auto t2 = a.Admit("", 0).ticket;
  EXPECT_FALSE(a.Admit("", 0).evicted);
  EXPECT_FALSE(a.SetSource(t1, "a:203.0.113.5"));
  EXPECT_EQ(a.SetSource(t2, "a:203.0.113.5"), t1);
  EXPECT_FALSE(a.SetSource(t2, "a:203.0.113.6")) << "a source is set once";
  EXPECT_EQ(a.evicted(Limit::kMaxUnauthPerSource), 1u);
}

TEST(Admission, ReleasedAndAuthenticatedTicketsLeaveNoTrace) {
  Admission a;
  a.Configure(1000, 1000, 1000);
  for (int i = 0; i < 500; ++i) {
    auto t = a.Admit("a:10.0." + std::to_string(i % 7) + ".1", 0).ticket;
    if (i % 2 == 0) a.Authenticated(t);
    a.Released(t);
  }
  EXPECT_EQ(a.open(), 0u);
  EXPECT_EQ(a.unauthenticated(), 0u);
}

}  // namespace
}  // namespace tickwire::net
