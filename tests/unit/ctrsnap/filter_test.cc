// containerd's filter syntax as the snapshotter door parses and matches it
// (ctrsnap/filter.h), on the filters containerd v1.6 sends.

#include "ctrsnap/filter.h"

#include <gtest/gtest.h>

namespace ctrsnap {
namespace {

const std::map<std::string, std::string> kLabels = {
    {"containerd.io/snapshot.ref", "sha256:abc"}, {"a.b", "x y"}, {"plain", "1"}};

FilterFields Fields(std::string name = "default/3/key", std::string parent = "p",
                    std::string kind = "committed") {
  return FilterFields{.name = std::move(name),
                      .parent = std::move(parent),
                      .kind = std::move(kind),
                      .labels = &kLabels};
}

bool Matches(const std::vector<std::string>& filters, const FilterFields& f) {
  auto parsed = Filter::Parse(filters);
  EXPECT_TRUE(parsed) << parsed.error().message;
  return parsed && parsed->Match(f);
}

TEST(CtrsnapFilter, TheRemoteSnapshotFilterOfContainerdMatchesLabelAndQuotedParent) {
  // metadata/snapshot.go: labels."containerd.io/snapshot.ref"==%s,parent==%q
  const std::string f = R"(labels."containerd.io/snapshot.ref"==sha256:abc,parent=="p")";
  EXPECT_TRUE(Matches({f}, Fields()));
  EXPECT_FALSE(Matches({f}, Fields("n", "q")));
  EXPECT_FALSE(
      Matches({R"(labels."containerd.io/snapshot.ref"==sha256:abd,parent=="p")"}, Fields()));
  // The first layer: an empty parent, quoted.
  EXPECT_TRUE(
      Matches({R"(labels."containerd.io/snapshot.ref"==sha256:abc,parent=="")"}, Fields("n", "")));
  EXPECT_FALSE(
      Matches({R"(labels."containerd.io/snapshot.ref"==sha256:abc,parent=="")"}, Fields()));
}

TEST(CtrsnapFilter, EqualValueFindsTheLabelAndParentOfAnAlternative) {
  auto f = Filter::Parse({R"(labels."containerd.io/snapshot.ref"==sha256:abc,parent=="a/1/b")"});
  ASSERT_TRUE(f) << f.error().message;
  ASSERT_EQ(f->alternatives().size(), 1u);
  std::string v;
  ASSERT_TRUE(Filter::EqualValue(f->alternatives()[0], "labels.containerd.io/snapshot.ref", &v));
  EXPECT_EQ(v, "sha256:abc");
  ASSERT_TRUE(Filter::EqualValue(f->alternatives()[0], "parent", &v));
  EXPECT_EQ(v, "a/1/b");
  EXPECT_FALSE(Filter::EqualValue(f->alternatives()[0], "name", &v));
}

TEST(CtrsnapFilter, FieldsOperatorsAndPresence) {
  EXPECT_TRUE(Matches({"name==default/3/key"}, Fields()));
  EXPECT_TRUE(Matches({"kind==committed"}, Fields()));
  EXPECT_FALSE(Matches({"kind==active"}, Fields()));
  EXPECT_TRUE(Matches({"kind!=active"}, Fields()));
  EXPECT_TRUE(Matches({"labels.plain"}, Fields()));     // present
  EXPECT_FALSE(Matches({"labels.other"}, Fields()));    // absent
  EXPECT_TRUE(Matches({"labels.other!=x"}, Fields()));  // absent counts as ""
  EXPECT_TRUE(Matches({"labels.a.b==\"x y\""}, Fields()))
      << "an unquoted dotted path is one label key joined with '.'";
  EXPECT_TRUE(Matches({"name~=^default/[0-9]+/"}, Fields()));
  EXPECT_TRUE(Matches({"name~=/key$/"}, Fields()));
  EXPECT_FALSE(Matches({"name~=|^x|"}, Fields()));
  EXPECT_TRUE(Matches({" kind == committed , labels.plain == 1 "}, Fields()));
}

TEST(CtrsnapFilter, CommaIsAndSeveralFiltersAreOr) {
  EXPECT_FALSE(Matches({"kind==committed,name==other"}, Fields()));
  EXPECT_TRUE(Matches({"name==other", "kind==committed"}, Fields()));
  EXPECT_TRUE(Matches({}, Fields()));
}

TEST(CtrsnapFilter, GoQuotingAndEscapes) {
  auto u = Unquote(R"("a\"b\\c\n\x41\u00e9\101")");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(*u,
            "a\"b\\c\nA\xc3\xa9"
            "A");
  auto r = Unquote(R"(/a\/b/)");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, "a/b");
  EXPECT_FALSE(Unquote(R"("\q")"));
  EXPECT_FALSE(Unquote(R"("abc)"));
  EXPECT_FALSE(Unquote(R"("\u12")"));
}

TEST(CtrsnapFilter, BadFiltersAreOneLineInvalidArgument) {
  for (const char* bad : {"name==", "==x", "name=x", "name===x", "name==/x/", "labels.\"x",
                          "name==x,", "name==x y", "name~=(", "labels..a==1"}) {
    auto f = Filter::Parse({bad});
    ASSERT_FALSE(f) << bad;
    EXPECT_EQ(f.error().code, common::Errc::kInvalidArgument) << bad;
    EXPECT_NE(f.error().message.find(std::string("filter `") + bad + "`"), std::string::npos)
        << f.error().message;
    EXPECT_EQ(f.error().message.find('\n'), std::string::npos) << f.error().message;
  }
}

}  // namespace
}  // namespace ctrsnap
