#include "auth/authenticator.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "auth/password_hash.h"

namespace tickwire::auth {
namespace {

TEST(Authenticator, AcceptsTheConfiguredCredentials) {
  const Authenticator a("demo", "correct horse");
  EXPECT_TRUE(a.Check("demo", "correct horse"));
}

TEST(Authenticator, RejectsWrongUserOrPassword) {
  const Authenticator a("demo", "correct horse");
  EXPECT_FALSE(a.Check("demo", "wrong"));
  EXPECT_FALSE(a.Check("Demo", "correct horse"));  // case matters
  EXPECT_FALSE(a.Check("other", "correct horse"));
  EXPECT_FALSE(a.Check("other", "wrong"));
  EXPECT_FALSE(a.Check("correct horse", "demo"));  // swapped
}

TEST(Authenticator, RejectsEmptyInputs) {
  const Authenticator a("demo", "pw");
  EXPECT_FALSE(a.Check("", ""));
  EXPECT_FALSE(a.Check("demo", ""));
  EXPECT_FALSE(a.Check("", "pw"));
}

TEST(Authenticator, RejectsPrefixesAndExtensions) {
  const Authenticator a("demo", "password");
  for (const char* pass :
       {"p", "passwor", "password1", "password ", " password", "passwordpassword", "PASSWORD"}) {
    EXPECT_FALSE(a.Check("demo", pass)) << pass;
  }
  for (const char* user : {"d", "dem", "demo1", "demodemo", "demo "}) {
    EXPECT_FALSE(a.Check(user, "password")) << user;
  }
}

TEST(Authenticator, UserAndPasswordAreNotInterchangeableAcrossTheBoundary) {
  // "ab" + "c" must not equal "a" + "bc": fields are hashed separately.
  const Authenticator a("ab", "c");
  EXPECT_TRUE(a.Check("ab", "c"));
  EXPECT_FALSE(a.Check("a", "bc"));
  EXPECT_FALSE(a.Check("abc", ""));
}

TEST(Authenticator, BinaryAndLongValues) {
  const std::string user("u\0ser", 5);
  const std::string pass(10000, 'x');
  const Authenticator a(user, pass);
  EXPECT_TRUE(a.Check(user, pass));
  EXPECT_FALSE(a.Check("u", pass));  // stops at the NUL in C-string terms: must still differ
  EXPECT_FALSE(a.Check(user, std::string(9999, 'x')));
  EXPECT_FALSE(a.Check(user, std::string(10001, 'x')));
}

TEST(Authenticator, EmptyConfiguredPasswordOnlyMatchesEmpty) {
  // Config refuses empty credentials; the class itself still behaves exactly.
  const Authenticator a("", "");
  EXPECT_TRUE(a.Check("", ""));
  EXPECT_FALSE(a.Check("", "x"));
  EXPECT_FALSE(a.Check("x", ""));
}

TEST(Authenticator, ConcurrentChecksAgree) {
  const Authenticator a("demo", "pw");
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (std::size_t t = 0; t < wrong.size(); ++t) {
    threads.emplace_back([&a, &wrong, t] {
      for (int i = 0; i < 500; ++i) {
        if (!a.Check("demo", "pw") || a.Check("demo", "px")) ++wrong[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int w : wrong) EXPECT_EQ(w, 0);
}

UserEntry User(const std::string& name, const std::string& pass, std::uint32_t iterations) {
  return UserEntry{name, HashPassword(pass, iterations), Permissions::All()};
}

// PBKDF2 iterations `fn` runs (work is counted, not timed).
template <typename Fn>
std::uint64_t IterationsOf(Fn fn) {
  const std::uint64_t before = Pbkdf2IterationsRun();
  fn();
  return Pbkdf2IterationsRun() - before;
}

// Regression (an unknown name was checked against a dummy hash with the users file's highest
// iteration count, while a known name cost its own count: with one user at 2,000,000
// iterations, unknown names took 20 times as long as the others, which told which names
// exist): every failed check costs the same work, whatever the name.
TEST(Authenticator, FailedChecksCostTheSameWorkForUnknownAndKnownNames) {
  std::vector<UserEntry> users;
  users.push_back(User("cheap", "cheap-pw", 1'000));
  users.push_back(User("usual", "usual-pw", 4'000));
  users.push_back(User("dear", "dear-pw", 9'000));
  auto created = Authenticator::Create("admin", "admin-pw", std::move(users));
  const auto a = std::get<std::shared_ptr<const Authenticator>>(created);
  ASSERT_EQ(a->check_iterations(), 9'000u);
  for (const char* name : {"cheap", "usual", "dear", "nobody", "admin", ""}) {
    EXPECT_FALSE(a->TryQuick(name, "wrong").decided) << name << ": needs the slow check";
    EXPECT_EQ(IterationsOf([&] { EXPECT_EQ(a->Verify(name, "wrong"), nullptr); }), 9'000u) << name;
  }
  // A right password costs the user's own iterations, once: then the cache answers.
  EXPECT_EQ(IterationsOf([&] { EXPECT_NE(a->Verify("cheap", "cheap-pw"), nullptr); }), 1'000u);
  EXPECT_TRUE(a->TryQuick("cheap", "cheap-pw").decided);
  EXPECT_EQ(IterationsOf([&] { EXPECT_NE(a->Authenticate("cheap", "cheap-pw"), nullptr); }), 0u);
  // And a wrong one after that still pays the full price.
  EXPECT_EQ(IterationsOf([&] { EXPECT_EQ(a->Authenticate("cheap", "cheap-pX"), nullptr); }),
            9'000u);
  // STREAM_USER's right password needs no PBKDF2.
  const auto quick = a->TryQuick("admin", "admin-pw");
  EXPECT_TRUE(quick.decided);
  EXPECT_NE(quick.permissions, nullptr);
}

TEST(Authenticator, WithoutAUsersFileNothingRunsPbkdf2) {
  const auto created = Authenticator::Create("admin", "admin-pw", {});
  const auto a = std::get<std::shared_ptr<const Authenticator>>(created);
  EXPECT_EQ(a->check_iterations(), 0u);
  for (const char* name : {"admin", "nobody"}) {
    const auto q = a->TryQuick(name, "wrong");
    EXPECT_TRUE(q.decided) << name;
    EXPECT_EQ(q.permissions, nullptr) << name;
    EXPECT_EQ(IterationsOf([&] { EXPECT_EQ(a->Verify(name, "wrong"), nullptr); }), 0u) << name;
  }
}

}  // namespace
}  // namespace tickwire::auth
