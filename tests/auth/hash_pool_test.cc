#include "auth/hash_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace tickwire::auth {
namespace {

using namespace std::chrono_literals;

TEST(HashPool, RunsJobsOnItsOwnThreads) {
  HashPool pool(2, 16);
  std::vector<std::promise<std::thread::id>> done(8);
  for (auto& d : done) {
    ASSERT_TRUE(pool.TrySubmit([&d] {
      d.set_value(std::this_thread::get_id());
      return true;
    }));
  }
  for (auto& d : done) {
    auto f = d.get_future();
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    EXPECT_NE(f.get(), std::this_thread::get_id());
  }
  EXPECT_EQ(pool.threads(), 2u);
}

TEST(HashPool, QueueIsBoundedAndRefusesAtOnce) {
  HashPool pool(1, 3);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(pool.TrySubmit([&started, gate] {
    started.set_value();
    gate.wait();
    return true;
  }));
  ASSERT_EQ(started.get_future().wait_for(10s), std::future_status::ready);
  // The thread is busy: three may wait, the fourth is refused.
  std::atomic<int> ran{0};
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(pool.TrySubmit([&ran] { return ++ran > 0; }));
  EXPECT_FALSE(pool.TrySubmit([&ran] { return ++ran > 0; }));
  EXPECT_EQ(pool.queued(), 3u);
  EXPECT_EQ(pool.refused(), 1u);
  EXPECT_GE(pool.EstimatedWaitMs(), 100u);
  release.set_value();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (ran.load() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(ran.load(), 3);
  EXPECT_TRUE(pool.TrySubmit([] { return true; })) << "room again";
}

TEST(HashPool, StopDropsQueuedJobsAndFinishesTheRunningOne) {
  HashPool pool(1, 8);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  std::atomic<bool> finished{false};
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool.TrySubmit([&, gate] {
    started.set_value();
    gate.wait();
    finished = true;
    return true;
  }));
  ASSERT_EQ(started.get_future().wait_for(10s), std::future_status::ready);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool.TrySubmit([&ran] { return ++ran > 0; }));
  std::thread releaser([&release] {
    std::this_thread::sleep_for(20ms);
    release.set_value();
  });
  pool.Stop();
  releaser.join();
  EXPECT_TRUE(finished.load());
  EXPECT_EQ(ran.load(), 0);
  EXPECT_FALSE(pool.TrySubmit([] { return true; })) << "a stopped pool takes nothing";
  pool.Stop();  // idempotent
}

TEST(HashPool, ThrowingAndSkippedJobsAreCountedApartAndTheThreadCarriesOn) {
  HashPool pool(1, 4);
  ASSERT_TRUE(pool.TrySubmit([]() -> bool { throw std::runtime_error("boom"); }));
  ASSERT_TRUE(pool.TrySubmit([] { return false; }));  // nobody wanted it any more
  std::promise<void> after;
  ASSERT_TRUE(pool.TrySubmit([&after] {
    after.set_value();
    return true;
  }));
  ASSERT_EQ(after.get_future().wait_for(10s), std::future_status::ready);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (pool.completed() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(pool.faults(), 1u);
  EXPECT_EQ(pool.skipped(), 1u);
  EXPECT_EQ(pool.completed(), 1u);
}

}  // namespace
}  // namespace tickwire::auth
