#include "common/digest.h"

#include <gtest/gtest.h>

#include <string>

namespace common {
namespace {

constexpr const char* kEmptySha256 =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(DigestTest, KnownVectors) {
  EXPECT_EQ(Digest::Sha256Of(std::string_view("")).str(), kEmptySha256);
  EXPECT_EQ(Digest::Sha256Of(std::string_view("abc")).str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DigestTest, StreamingEqualsOneShot) {
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  Sha256 h;
  for (size_t off = 0; off < data.size(); off += 4093)
    h.Update(std::string_view(data).substr(off, 4093));
  EXPECT_EQ(h.size(), data.size());
  EXPECT_EQ(h.Finish(), Digest::Sha256Of(std::string_view(data)));
}

// Current is the digest of what was hashed so far, and hashing goes on
// after it as if it had not been called.
TEST(DigestTest, CurrentLeavesTheStateToContinue) {
  Sha256 h;
  EXPECT_EQ(h.Current().str(), kEmptySha256);
  h.Update(std::string_view("ab"));
  EXPECT_EQ(h.Current(), Digest::Sha256Of(std::string_view("ab")));
  EXPECT_EQ(h.size(), 2u);
  h.Update(std::string_view("c"));
  EXPECT_EQ(h.Current(), Digest::Sha256Of(std::string_view("abc")));
  EXPECT_EQ(h.Finish(), Digest::Sha256Of(std::string_view("abc")));
  EXPECT_EQ(h.Current().str(), kEmptySha256) << "Finish resets";
}

TEST(DigestTest, ParseRoundTrips) {
  auto d = Digest::Parse(kEmptySha256);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->str(), kEmptySha256);
  EXPECT_EQ(d->algorithm(), DigestAlgorithm::kSha256);
  EXPECT_EQ(d->short_hex(), "e3b0c44298fc");
}

struct BadDigest {
  const char* text;
  const char* why;
};

void PrintTo(const BadDigest& b, std::ostream* os) { *os << "`" << b.text << "`"; }

class DigestParseError : public ::testing::TestWithParam<BadDigest> {};

TEST_P(DigestParseError, RejectedWithReason) {
  auto d = Digest::Parse(GetParam().text);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, Errc::kInvalidArgument);
  EXPECT_NE(d.error().message.find(GetParam().why), std::string::npos) << d.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, DigestParseError,
    ::testing::Values(
        BadDigest{"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "prefix"},
        BadDigest{"md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm"},
        BadDigest{"sha256:e3b0", "needs 64 hex"},
        BadDigest{"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                  "lower-case"},
        BadDigest{"sha256:../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                  "lower-case"},
        BadDigest{"", "prefix"}));

}  // namespace
}  // namespace common

namespace common {
namespace {
TEST(DigestTest, DefaultIsSha256OfNothing) { EXPECT_EQ(Digest().str(), kEmptySha256); }
}  // namespace
}  // namespace common
