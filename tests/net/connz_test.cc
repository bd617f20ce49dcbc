#include "net/connz.h"

#include <gtest/gtest.h>

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
                                                                             {"other", "1"}}) {
    ConnzQuery bad;
    EXPECT_NE(ParseConnzQuery({{k, v}}, bad), "") << k << "=" << v;
  }
}

TEST(Connz, SortsPagesAndEscapesClientStrings) {
  const std::string hostile = "a\"b\\c\n\x01\xff";  // invalid UTF-8 too
  std::vector<ConnectionInfo> all = {Conn(3, 10, "x"), Conn(1, 30, hostile), Conn(2, 20, "y")};
  ConnzQuery q;
  q.sort = ConnzQuery::Sort::kBytesIn;
  q.limit = 2;
  std::string why;
  auto v = testing::ParseJson(RenderConnz(all, q), &why);
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
  v = testing::ParseJson(RenderConnz(all, q));
  ASSERT_TRUE(v);
  const auto& by_id = v->as_object().at("connections").as_array();
  ASSERT_EQ(by_id.size(), 2u);
  EXPECT_EQ(by_id[0].as_object().at("id").to_number<int>(), 2);
  EXPECT_EQ(by_id[1].as_object().at("id").to_number<int>(), 3);
}

}  // namespace
}  // namespace tickwire::net
