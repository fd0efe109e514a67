// containerd's snapshot names as a proxy snapshotter sees them
// (ctrsnap/names.h).

#include "ctrsnap/names.h"

#include <gtest/gtest.h>

namespace ctrsnap {
namespace {

const std::string kChain = "sha256:" + std::string(64, 'a');

TEST(CtrsnapNames, ParsesNamespaceSequenceAndKey) {
  auto k = ParseCtrKey("default/12/extract-123-abc " + kChain);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->ns, "default");
  EXPECT_EQ(k->seq, 12u);
  EXPECT_EQ(k->key, "extract-123-abc " + kChain);
  auto nested = ParseCtrKey("k8s.io/3/a/b/c");
  ASSERT_TRUE(nested);
  EXPECT_EQ(nested->key, "a/b/c") << "the key keeps its own slashes";
  for (const char* bad :
       {"", "key", kChain.c_str(), "ns/x/key", "ns//key", "/1/key", "ns/1/", "ns/1"})
    EXPECT_FALSE(ParseCtrKey(bad)) << bad;
}

TEST(CtrsnapNames, ChainIdsAreLowerCaseSha256) {
  EXPECT_TRUE(IsChainId(kChain));
  EXPECT_FALSE(IsChainId("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(IsChainId("sha256:" + std::string(63, 'a')));
  EXPECT_FALSE(IsChainId("sha512:" + std::string(64, 'a')));
}

TEST(CtrsnapNames, ChainOfACommitComesFromTheRefLabelThenTheName) {
  const std::string other = "sha256:" + std::string(64, 'b');
  EXPECT_EQ(ChainIdOf("default/4/" + other, {{std::string(kLabelSnapshotRef), kChain}}), kChain);
  EXPECT_EQ(ChainIdOf("default/4/" + other, {}), other);
  EXPECT_EQ(ChainIdOf("default/4/" + other, {{std::string(kLabelSnapshotRef), "junk"}}), other);
  EXPECT_EQ(ChainIdOf("default/4/mycommit", {}), "");
  EXPECT_EQ(ChainIdOf(kChain, {}), "") << "a bare name is not containerd's";
}

}  // namespace
}  // namespace ctrsnap
