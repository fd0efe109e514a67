// OCI descriptors (oci/descriptor.h): the JSON round trip and what
// DescriptorFromJson refuses.

#include "oci/descriptor.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace oci {
namespace {

using common::Digest;
using common::Errc;

TEST(DescriptorTest, JsonRoundTrip) {
  Descriptor d{.media_type = "application/vnd.oci.image.manifest.v1+json",
               .digest = Digest::Sha256Of(std::string_view("m")),
               .size = 7143,
               .annotations = {{"org.opencontainers.image.ref.name", "v1"}},
               .urls = {},
               .artifact_type = {}};
  nlohmann::json j = d;
  EXPECT_EQ(j["mediaType"], d.media_type);
  EXPECT_EQ(j["digest"], d.digest.str());
  EXPECT_EQ(j["size"], 7143);
  EXPECT_FALSE(j.contains("urls"));
  auto back = DescriptorFromJson(j);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, d);
}

TEST(DescriptorTest, FromJsonRejectsInvalid) {
  const std::string dg = Digest::Sha256Of(std::string_view("m")).str();
  const char* cases[] = {
      R"([])",
      R"({"digest": "DG", "size": 1})",
      R"({"mediaType": "t", "size": 1})",
      R"({"mediaType": "t", "digest": "sha256:abc", "size": 1})",
      R"({"mediaType": "t", "digest": "DG"})",
      R"({"mediaType": "t", "digest": "DG", "size": -1})",
      R"({"mediaType": "t", "digest": "DG", "size": 1.5})",
      R"({"mediaType": "t", "digest": "DG", "size": "1"})",
      R"({"mediaType": "t", "digest": "DG", "size": 18446744073709551615})",
      R"({"mediaType": "t", "digest": "DG", "size": 1, "annotations": {"a": 1}})",
      R"({"mediaType": "t", "digest": "DG", "size": 1, "annotations": []})",
      R"({"mediaType": "t", "digest": "DG", "size": 1, "urls": "x"})",
      R"({"mediaType": 5, "digest": "DG", "size": 1})",
  };
  for (const char* c : cases) {
    std::string text = c;
    if (auto p = text.find("DG"); p != std::string::npos) text.replace(p, 2, dg);
    auto r = DescriptorFromJson(nlohmann::json::parse(text));
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << text;
  }
  auto ok = DescriptorFromJson(nlohmann::json::parse(
      R"({"mediaType": "t", "digest": ")" + dg +
      R"(", "size": 0, "platform": {"os": "linux"}, "urls": ["https://x"]})"));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->urls, std::vector<std::string>{"https://x"});
}

}  // namespace
}  // namespace oci
