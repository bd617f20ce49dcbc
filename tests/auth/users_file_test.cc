#include "auth/users_file.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "auth/authenticator.h"

namespace tickwire::auth {
namespace {

std::string Hash(std::string_view pw) {
  return FormatPasswordHash(HashPassword(pw, kMinIterations));
}

TEST(UsersFile, ParsesUsersPermissionsAndComments) {
  const std::string text =
      "# users\n\n"
      "feed  " +
      Hash("feed-pw") +
      " publish=*   # producer only\n"
      "viewer\t" +
      Hash("viewer-pw") +
      " subscribe=FX.*,AAPL\r\n"
      "both " +
      Hash("both-pw") + " subscribe=* publish=X.*\n";
  auto result = ParseUsersFile(text);
  ASSERT_TRUE(std::holds_alternative<std::vector<UserEntry>>(result))
      << std::get<std::string>(result);
  const auto& users = std::get<std::vector<UserEntry>>(result);
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[0].name, "feed");
  EXPECT_TRUE(users[0].permissions.publish.MatchesAll());
  EXPECT_TRUE(users[0].permissions.subscribe.empty());
  EXPECT_EQ(users[1].name, "viewer");
  EXPECT_TRUE(users[1].permissions.publish.empty());
  EXPECT_TRUE(users[1].permissions.subscribe.Matches("FX.EUR"));
  EXPECT_TRUE(users[1].permissions.subscribe.Matches("AAPL"));
  EXPECT_TRUE(users[2].permissions.publish.Matches("X.1"));
  EXPECT_TRUE(VerifyPassword(users[1].hash, "viewer-pw"));
}

TEST(UsersFile, ErrorsNameTheLine) {
  const std::string h = Hash("pw");
  const std::pair<std::string, std::string> cases[] = {
      {"alice\n", "line 1"},
      {"alice " + h + "\nalice " + h + "\n", "line 2: user 'alice' appears twice"},
      {"bad/name " + h + "\n", "line 1: user name"},
      {"alice notahash\n", "line 1: password hash"},
      {"alice " + h + " admin=yes\n", "line 1: unknown field"},
      {"alice " + h + " publish=* publish=x\n", "publish given twice"},
      {"\n\nalice " + h + " subscribe=a*b\n", "line 3: subscribe: pattern 'a*b'"},
  };
  for (const auto& [text, want] : cases) {
    auto result = ParseUsersFile(text);
    ASSERT_TRUE(std::holds_alternative<std::string>(result)) << text;
    EXPECT_NE(std::get<std::string>(result).find(want), std::string::npos)
        << std::get<std::string>(result);
  }
}

TEST(UsersFile, AtMostMaxUsers) {
  const std::string h = Hash("pw");
  std::string text;
  text.reserve((kMaxUsers + 1) * (h.size() + 10));
  for (std::size_t i = 0; i < kMaxUsers; ++i) text += "u" + std::to_string(i) + " " + h + "\n";
  auto at_limit = ParseUsersFile(text);
  ASSERT_TRUE(std::holds_alternative<std::vector<UserEntry>>(at_limit))
      << std::get<std::string>(at_limit);
  EXPECT_EQ(std::get<std::vector<UserEntry>>(at_limit).size(), kMaxUsers);
  text += "one-more " + h + "\n";
  auto over = ParseUsersFile(text);
  ASSERT_TRUE(std::holds_alternative<std::string>(over));
  EXPECT_EQ(std::get<std::string>(over),
            "line " + std::to_string(kMaxUsers + 1) + ": more than 100000 users");
}

TEST(UsersFile, AtMostMaxBytes) {
  // One user, padded with a comment to exactly the limit: loads. One byte more: refused before
  // parsing.
  const std::string path = ::testing::TempDir() + "tickwire-users-size";
  const std::string user = "alice " + Hash("pw") + "\n";
  std::string text = user + "#" + std::string(kMaxUsersFileBytes - user.size() - 2, 'x') + "\n";
  ASSERT_EQ(text.size(), kMaxUsersFileBytes);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  auto at_limit = LoadUsersFile(path);
  ASSERT_TRUE(std::holds_alternative<std::vector<UserEntry>>(at_limit))
      << std::get<std::string>(at_limit);
  EXPECT_EQ(std::get<std::vector<UserEntry>>(at_limit).size(), 1u);
  std::ofstream(path, std::ios::binary | std::ios::app) << "\n";
  auto over = LoadUsersFile(path);
  ASSERT_TRUE(std::holds_alternative<std::string>(over));
  EXPECT_NE(std::get<std::string>(over).find("is larger than 4194304 bytes"), std::string::npos)
      << std::get<std::string>(over);
  std::remove(path.c_str());
}

TEST(UsersFile, MissingFileIsAnError) {
  auto result = LoadUsersFile("/nonexistent/tickwire-users");
  ASSERT_TRUE(std::holds_alternative<std::string>(result));
}

TEST(Authenticator, UsersFileAndStreamUserTogether) {
  auto parsed = ParseUsersFile("feed " + Hash("feed-pw") + " publish=T.*\nviewer " +
                               Hash("viewer-pw") + " subscribe=*\n");
  auto created = Authenticator::Create("admin", "admin-pw",
                                       std::move(std::get<std::vector<UserEntry>>(parsed)));
  ASSERT_TRUE((std::holds_alternative<std::shared_ptr<const Authenticator>>(created)));
  const auto a = std::get<std::shared_ptr<const Authenticator>>(created);
  EXPECT_EQ(a->user_count(), 3u);
  auto admin = a->Authenticate("admin", "admin-pw");
  ASSERT_TRUE(admin);
  EXPECT_TRUE(admin->publish.MatchesAll());
  EXPECT_TRUE(admin->subscribe.MatchesAll());
  auto feed = a->Authenticate("feed", "feed-pw");
  ASSERT_TRUE(feed);
  EXPECT_TRUE(feed->publish.Matches("T.1"));
  EXPECT_TRUE(feed->subscribe.empty());
  // Twice: the second time comes from the verified cache and must agree.
  EXPECT_TRUE(a->Authenticate("feed", "feed-pw"));
  EXPECT_FALSE(a->Authenticate("feed", "viewer-pw"));
  EXPECT_FALSE(a->Authenticate("feed", "feed-pw "));
  EXPECT_FALSE(a->Authenticate("nobody", "feed-pw"));
  EXPECT_FALSE(a->Authenticate("admin", "feed-pw"));
  EXPECT_TRUE(a->Lookup("viewer"));
  EXPECT_FALSE(a->Lookup("nobody"));
}

TEST(Authenticator, UsersFileOnlyAndDuplicateWithStreamUser) {
  auto parsed = ParseUsersFile("feed " + Hash("pw") + "\n");
  auto users = std::get<std::vector<UserEntry>>(parsed);
  auto only = Authenticator::Create("", "", users);
  const auto a = std::get<std::shared_ptr<const Authenticator>>(only);
  EXPECT_TRUE(a->Check("feed", "pw"));
  EXPECT_FALSE(a->Check("", ""));
  auto dup = Authenticator::Create("feed", "other", users);
  ASSERT_TRUE(std::holds_alternative<std::string>(dup));
}

TEST(CredentialStore, SwapsSnapshots) {
  CredentialStore store(std::make_shared<Authenticator>("a", "1"));
  auto before = store.Get();
  store.Set(std::make_shared<Authenticator>("a", "2"));
  EXPECT_TRUE(before->Check("a", "1"));
  EXPECT_FALSE(store.Get()->Check("a", "1"));
  EXPECT_TRUE(store.Get()->Check("a", "2"));
}

}  // namespace
}  // namespace tickwire::auth
