// The topic cap's lists and decisions, against a plain model.
#include "engine/topic_cap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <list>
#include <memory>
#include <random>
#include <vector>

namespace tickwire::engine {
namespace {

struct Item {
  int id = 0;
  bool pinned = false;  // not evictable (an open bar)
  CapLinks<Item> cap{};
};
using Cap = TopicCap<Item, &Item::cap>;

TEST(TopicCap, RefusesWhenTheOldestMayNotGoAndEvictsItWhenItMay) {
  Cap cap(2, 0);
  Item a{1}, b{2};
  std::vector<int> evicted;
  auto evictable = [](const Item& i) { return !i.pinned; };
  auto evict = [&](Item& i) {
    evicted.push_back(i.id);
    cap.Remove(i);
  };
  ASSERT_EQ(cap.MakeRoom(7, evictable, evict), Refusal::kNone);
  cap.Insert(a, 7);
  ASSERT_EQ(cap.MakeRoom(7, evictable, evict), Refusal::kNone);
  cap.Insert(b, 7);
  a.pinned = true;
  EXPECT_EQ(cap.MakeRoom(7, evictable, evict), Refusal::kTopicLimit);
  EXPECT_TRUE(evicted.empty());
  cap.Touch(a);  // now b is the oldest, and it may go
  EXPECT_EQ(cap.MakeRoom(7, evictable, evict), Refusal::kNone);
  EXPECT_EQ(evicted, std::vector<int>{2});
  EXPECT_EQ(cap.size(), 1u);
  EXPECT_EQ(cap.Oldest(), &a);
}

// Random operations against a model: recency lists (global and per user) and the decisions.
TEST(TopicCap, MatchesAModelUnderRandomOperations) {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    const std::size_t max_topics = 1 + rng() % 12;
    const std::size_t per_user = rng() % 2 == 0 ? 0 : 1 + rng() % 5;
    Cap cap(max_topics, per_user);
    std::list<std::unique_ptr<Item>> items;  // held items, most recent first (the model)
    int next_id = 0;
    auto user_of = [](const Item& i) { return static_cast<UserId>(i.id % 3); };
    auto evictable = [](const Item& i) { return !i.pinned; };
    for (int op = 0; op < 3000; ++op) {
      const unsigned kind = rng() % 4;
      if (kind == 0 && !items.empty()) {  // publish to a held topic
        auto it = std::next(items.begin(), static_cast<long>(rng() % items.size()));
        cap.Touch(**it);
        items.splice(items.begin(), items, it);
      } else if (kind == 1 && !items.empty()) {  // a bar opens or closes
        auto it = std::next(items.begin(), static_cast<long>(rng() % items.size()));
        (*it)->pinned = !(*it)->pinned;
      } else {  // a new topic
        auto item = std::make_unique<Item>();
        item->id = next_id++;
        const UserId user = user_of(*item);
        // The model's decision.
        std::vector<int> want_evicted;
        Refusal want = Refusal::kNone;
        std::size_t held = items.size();
        std::size_t of_user = 0;
        const Item* user_oldest = nullptr;
        for (const auto& i : items) {
          if (user_of(*i) == user) {
            ++of_user;
            user_oldest = i.get();
          }
        }
        if (per_user > 0 && of_user >= per_user) {
          if (!evictable(*user_oldest)) {
            want = Refusal::kUserTopicLimit;
          } else {
            want_evicted.push_back(user_oldest->id);
            --held;
          }
        }
        if (want == Refusal::kNone && held >= max_topics) {
          const Item* oldest = nullptr;
          for (auto it = items.rbegin(); it != items.rend(); ++it) {
            if (std::find(want_evicted.begin(), want_evicted.end(), (*it)->id) ==
                want_evicted.end()) {
              oldest = it->get();
              break;
            }
          }
          if (!evictable(*oldest)) {
            want = Refusal::kTopicLimit;
          } else {
            want_evicted.push_back(oldest->id);
          }
        }
        std::vector<int> evicted;
        const Refusal got = cap.MakeRoom(user, evictable, [&](Item& i) {
          evicted.push_back(i.id);
          cap.Remove(i);
          items.remove_if([&](const auto& p) { return p.get() == &i; });
        });
        ASSERT_EQ(got, want) << "seed " << seed << " op " << op;
        ASSERT_EQ(evicted, want_evicted) << "seed " << seed << " op " << op;
        if (got == Refusal::kNone) {
          cap.Insert(*item, user);
          items.push_front(std::move(item));
        }
      }
      ASSERT_EQ(cap.size(), items.size());
      ASSERT_LE(cap.size(), max_topics);
      ASSERT_EQ(cap.Oldest(), items.empty() ? nullptr : items.back().get());
      if (per_user > 0) {
        for (UserId u = 0; u < 3; ++u) {
          const auto n = static_cast<std::size_t>(std::count_if(
              items.begin(), items.end(), [&](const auto& i) { return user_of(*i) == u; }));
          ASSERT_EQ(cap.CountOf(u), n);
          ASSERT_LE(n, per_user);
        }
      }
    }
  }
}

}  // namespace
}  // namespace tickwire::engine
