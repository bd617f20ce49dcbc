// The checker is only useful if it rejects invalid JSON: these tests pin that down.
#include "json_checker.h"

#include <gtest/gtest.h>

#include <string>

namespace tickwire::testing {
namespace {

bool Valid(std::string_view text) { return JsonParser().Parse(text).has_value(); }

TEST(JsonChecker, AcceptsValidDocuments) {
  for (const char* ok : {"{}", "[]", "0", "-0", "1.5e-3", "-12E+4", "true", "false", "null", "\"\"",
                         " {\"a\" : [1, 2, {\"b\": null}], \"c\": \"\\u00e9\\n\"} ",
                         "\"\\ud834\\udd1e\"", "\"\\/\\b\\f\\r\\t\\\"\\\\\"", "[[[[]]]]"}) {
    JsonParser p;
    EXPECT_TRUE(p.Parse(ok).has_value()) << ok << ": " << p.error();
  }
  EXPECT_TRUE(Valid("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e\""));
}

TEST(JsonChecker, RejectsInvalidDocuments) {
  for (const char* bad :
       {"",          "{",           "}",           "[1,]",        "{\"a\":1,}",
        "{a:1}",     "{\"a\" 1}",   "01",          "1.",          ".5",
        "-",         "1e",          "+1",          "tru",         "nul",
        "NaN",       "Infinity",    "'x'",         "\"abc",       "\"\\x\"",
        "\"\\u12\"", "\"\\u12G4\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
        "{} {}",     "[1 2]",       "\"a\"b"}) {
    EXPECT_FALSE(Valid(bad)) << bad;
  }
  EXPECT_FALSE(Valid(std::string("\"a\nb\"")));                        // raw newline
  EXPECT_FALSE(Valid(std::string("\"a\x01") + "b\""));                 // raw control char
  EXPECT_FALSE(Valid(std::string("\"\0\"", 3)));                       // raw NUL
  EXPECT_FALSE(Valid("\"\x80\""));                                     // stray continuation byte
  EXPECT_FALSE(Valid("\"\xc0\x80\""));                                 // overlong NUL
  EXPECT_FALSE(Valid("\"\xe0\x80\xaf\""));                             // overlong '/'
  EXPECT_FALSE(Valid("\"\xed\xa0\x80\""));                             // UTF-8 encoded surrogate
  EXPECT_FALSE(Valid("\"\xf4\x90\x80\x80\""));                         // above U+10FFFF
  EXPECT_FALSE(Valid("\"\xc3\""));                                     // truncated sequence
  EXPECT_FALSE(Valid(std::string(100, '[') + std::string(100, ']')));  // too deep
}

TEST(JsonChecker, DecodesStringsAndFindsMembers) {
  const auto v = JsonParser().Parse(R"({"k":"a\"b\\c\u0001\u00e9","n":-1.5,"b":true,"z":null})");
  ASSERT_TRUE(v.has_value());
  ASSERT_NE(v->Find("k"), nullptr);
  EXPECT_EQ(v->Find("k")->text, "a\"b\\c\x01\xc3\xa9");
  EXPECT_EQ(v->Find("n")->text, "-1.5");
  EXPECT_TRUE(v->Find("b")->boolean);
  EXPECT_EQ(v->Find("z")->kind, JsonValue::Kind::kNull);
  EXPECT_EQ(v->Find("missing"), nullptr);
}

}  // namespace
}  // namespace tickwire::testing
