#include "net/connz.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "support/json.h"

namespace tickwire::net {
namespace {

ConnectionInfo Conn(std::uint64_t id, std::uint64_t bytes_in, std::string name) {
  ConnectionInfo c;
  c.id = id;
  c.bytes_in = bytes_in;
  c.client_name = std::move(name);
  c.state = "ready";
  return c;
}

TEST(Connz, ParsesParametersAndRejectsBadOnes) {
  ConnzQuery q;
  EXPECT_EQ(
      ParseConnzQuery({{"sort", "pending"}, {"limit", "7"}, {"offset", "2"}, {"subs", "1"}}, q),
      "");
  EXPECT_EQ(q.sort, ConnzQuery::Sort::kPending);
  EXPECT_EQ(q.limit, 7u);
  EXPECT_EQ(q.offset, 2u);
  EXPECT_TRUE(q.subs);
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{{"sort", "name"},
                                                                             {"limit", "0"},
                                                                             {"limit", "10001"},
                                                                             {"limit", "-1"},
                                                                             {"offset", "x"},
                                                                             {"subs", "yes"},
                                                                             {"sub_topics", "257"},
                                                                             {"other", "1"}}) {
    ConnzQuery bad;
    EXPECT_NE(ParseConnzQuery({{k, v}}, bad), "") << k << "=" << v;
  }
}

TEST(Connz, SubscriptionDetailsHaveABoundedPage) {
  ConnzQuery q;
  EXPECT_EQ(ParseConnzQuery({{"subs", "1"}}, q), "");
  EXPECT_EQ(q.limit, 100u);
  EXPECT_EQ(q.sub_topics, 16u);
  EXPECT_EQ(ParseConnzQuery({{"subs", "1"}, {"limit", "100"}, {"sub_topics", "256"}}, q), "");
  EXPECT_EQ(q.sub_topics, 256u);
  ConnzQuery big;
  EXPECT_EQ(ParseConnzQuery({{"subs", "1"}, {"limit", "101"}}, big),
            "with subs=1, limit must be from 1 to 100");
  EXPECT_EQ(ParseConnzQuery({{"subs", "0"}, {"limit", "10000"}}, big), "");
}

TEST(Connz, SelectPageSortsOnlyKeysAndCutsThePage) {
  std::vector<ConnectionKey> keys;
  for (std::uint64_t id = 1; id <= 50; ++id) keys.push_back({id, unsigned(id % 2), (id * 7) % 11});
  ConnzQuery q;
  q.sort = ConnzQuery::Sort::kPending;
  q.offset = 3;
  q.limit = 5;
  const auto page = SelectPage(keys, q);
  ASSERT_EQ(page.size(), 5u);
  std::vector<ConnectionKey> all = keys;
  std::stable_sort(all.begin(), all.end(),
                   [](const ConnectionKey& a, const ConnectionKey& b) { return a.key > b.key; });
  for (std::size_t i = 0; i < page.size(); ++i) EXPECT_EQ(page[i].id, all[3 + i].id) << i;
  q.offset = 60;
  EXPECT_TRUE(SelectPage(keys, q).empty());
  q = ConnzQuery{};
  q.limit = 2;
  for (auto& k : keys) k.key = k.id;  // what SortKey gives for sort=id
  std::reverse(keys.begin(), keys.end());
  const auto by_id = SelectPage(keys, q);
  ASSERT_EQ(by_id.size(), 2u);
  EXPECT_EQ(by_id[0].id, 1u);
  EXPECT_EQ(by_id[1].id, 2u);
}

TEST(Connz, RendersSubscriptionsWithTheirTopicCounts) {
  ConnectionInfo c = Conn(9, 0, "n");
  c.subscriptions = 2;
  c.subs.push_back({4, engine::Mode::kTick, 3, {"*", "A"}});
  c.subs.push_back({5, engine::Mode::kSecond, 1000, {}});
  ConnzQuery q;
  q.subs = true;
  const auto v = testing::ParseJson(RenderConnz(7, {c}, q));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->as_object().at("total").to_number<int>(), 7);
  const auto& subs =
      v->as_object().at("connections").as_array()[0].as_object().at("subs").as_array();
  ASSERT_EQ(subs.size(), 2u);
  EXPECT_EQ(subs[0].as_object().at("topic_count").to_number<int>(), 3);
  EXPECT_EQ(subs[0].as_object().at("topics").as_array().size(), 2u);
  EXPECT_EQ(testing::StringField(subs[1].as_object(), "mode"), "second");
  EXPECT_EQ(subs[1].as_object().at("topic_count").to_number<int>(), 1000);
  EXPECT_TRUE(subs[1].as_object().at("topics").as_array().empty());
}

// What the admin endpoint does: keys of every connection, the page's full descriptions.
std::string Listing(const std::vector<ConnectionInfo>& all, const ConnzQuery& q) {
  std::vector<ConnectionKey> keys;
  for (const auto& c : all) keys.push_back({c.id, c.worker, SortKey(c, q.sort)});
  std::vector<ConnectionInfo> page;
  for (const auto& k : SelectPage(keys, q)) {
    page.push_back(*std::find_if(all.begin(), all.end(),
                                 [&](const ConnectionInfo& c) { return c.id == k.id; }));
  }
  return RenderConnz(all.size(), page, q);
}

TEST(Connz, SortsPagesAndEscapesClientStrings) {
  const std::string hostile = "a\"b\\c\n\x01\xff";  // invalid UTF-8 too
  std::vector<ConnectionInfo> all = {Conn(3, 10, "x"), Conn(1, 30, hostile), Conn(2, 20, "y")};
  ConnzQuery q;
  q.sort = ConnzQuery::Sort::kBytesIn;
  q.limit = 2;
  std::string why;
  auto v = testing::ParseJson(Listing(all, q), &why);
  ASSERT_TRUE(v) << why;
  const auto& o = v->as_object();
  EXPECT_EQ(o.at("total").to_number<int>(), 3);
  const auto& conns = o.at("connections").as_array();
  ASSERT_EQ(conns.size(), 2u);
  EXPECT_EQ(conns[0].as_object().at("id").to_number<int>(), 1);
  EXPECT_EQ(testing::StringField(conns[0].as_object(), "client_name"), "a\"b\\c\n\x01\xef\xbf\xbd");
  EXPECT_EQ(conns[1].as_object().at("id").to_number<int>(), 2);

  q = ConnzQuery{};
  q.offset = 1;
  v = testing::ParseJson(Listing(all, q));
  ASSERT_TRUE(v);
  const auto& by_id = v->as_object().at("connections").as_array();
  ASSERT_EQ(by_id.size(), 2u);
  EXPECT_EQ(by_id[0].as_object().at("id").to_number<int>(), 2);
  EXPECT_EQ(by_id[1].as_object().at("id").to_number<int>(), 3);
}

}  // namespace
}  // namespace tickwire::net
