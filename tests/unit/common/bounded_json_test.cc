#include "common/bounded_json.h"

#include <gtest/gtest.h>

#include <string>

namespace common {
namespace {

using nlohmann::json;

constexpr JsonLimits kTen{.max_values = 10, .max_depth = 3};

// `[v,v,…]` with `n` items: n + 1 values.
std::string ArrayOf(int n, const std::string& v) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? "," : "") + v;
  return s + "]";
}

// `n` arrays, one inside the other: depth n, n values.
std::string Nested(int n) { return std::string(n, '[') + std::string(n, ']'); }

TEST(BoundedJson, ParsesTheSameTreeAsNlohmannJson) {
  const std::string text =
      R"({"a":[1,-2,3.5,"x",true,false,null],"b":{"c":{"d":"é"}},"e":18446744073709551615})";
  auto j = ParseBoundedJson(text, {.max_values = 100, .max_depth = 10});
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ(*j, json::parse(text));
}

TEST(BoundedJson, EveryKindOfValueCounts) {
  // Eight scalars of every kind, in an array: nine values.
  const std::string text = R"([1,-2,3.5,"x",true,false,null,{}])";
  EXPECT_TRUE(ParseBoundedJson(text, {.max_values = 9, .max_depth = 2}));
  auto over = ParseBoundedJson(text, {.max_values = 8, .max_depth = 2});
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().message, "more than 8 JSON values");
}

TEST(BoundedJson, ValuesAtTheLimitPassAndOneMoreFails) {
  EXPECT_TRUE(ParseBoundedJson(ArrayOf(9, "\"\""), kTen));
  auto over = ParseBoundedJson(ArrayOf(10, "\"\""), kTen);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(over.error().message, "more than 10 JSON values");
}

TEST(BoundedJson, ObjectMembersCountByTheirValues) {
  // {"k0":0,…,"k8":8}: the object and nine members.
  std::string text = "{";
  for (int i = 0; i < 9; ++i) text += (i ? "," : "") + ("\"k" + std::to_string(i) + "\":0");
  EXPECT_TRUE(ParseBoundedJson(text + "}", kTen));
  EXPECT_FALSE(ParseBoundedJson(text + ",\"k9\":0}", kTen));
}

TEST(BoundedJson, DepthAtTheLimitPassesAndOneDeeperFails) {
  EXPECT_TRUE(ParseBoundedJson(Nested(3), kTen));
  EXPECT_TRUE(ParseBoundedJson(R"({"a":{"b":[1,2]},"c":[[3]]})", kTen));
  auto over = ParseBoundedJson(R"({"a":{"b":[[1]]}})", kTen);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(over.error().message, "nested deeper than 3 levels");
}

TEST(BoundedJson, ScalarsAtTheTopLevelAreValues) {
  auto j = ParseBoundedJson("\"text\"", {.max_values = 1, .max_depth = 0});
  ASSERT_TRUE(j) << j.error().message;
  EXPECT_EQ(*j, "text");
}

TEST(BoundedJson, SyntaxErrorsNameTheByte) {
  for (const char* text : {"", "{", "[1,]", "{\"a\":1} x", "nul"}) {
    auto j = ParseBoundedJson(text, kTen);
    ASSERT_FALSE(j) << text;
    EXPECT_EQ(j.error().code, Errc::kInvalidArgument);
    EXPECT_TRUE(j.error().message.starts_with("invalid JSON at byte ")) << j.error().message;
  }
  EXPECT_EQ(ParseBoundedJson("[1,]", kTen).error().message, "invalid JSON at byte 4");
}

TEST(BoundedJson, ALimitStopsTheCountingPassAtOnce) {
  // Millions of values past the limit, then a syntax error: the pass
  // stopped at the limit, before reaching it.
  std::string text = "[" + ArrayOf(2'000'000, "0") + ",";
  auto j = ParseBoundedJson(text, kTen);
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().message, "more than 10 JSON values");
}

}  // namespace
}  // namespace common
