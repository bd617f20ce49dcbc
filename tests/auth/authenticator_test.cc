#include "auth/authenticator.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

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

}  // namespace
}  // namespace tickwire::auth
