#include "registry/manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace registry {
namespace {

using nlohmann::json;

std::string Hex(char c) { return std::string(64, c); }
std::string D(char c) { return "sha256:" + Hex(c); }

json Desc(std::string_view mt, char c, int64_t size) {
  return {{"mediaType", mt}, {"digest", D(c)}, {"size", size}};
}

json GoodManifest() {
  return {{"schemaVersion", 2},
          {"mediaType", media::kOciManifest},
          {"config", Desc(media::kOciConfig, 'a', 100)},
          {"layers", json::array({Desc(media::kOciLayerGzip, 'b', 10),
                                  Desc(media::kOciLayerZstd, 'c', 20)})}};
}

TEST(ManifestTest, ParsesOciManifest) {
  auto m = ParseManifest(GoodManifest().dump(), media::kOciManifest);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->config.digest.str(), D('a'));
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[1].size, 20);
}

TEST(ManifestTest, DockerSchema2WithoutBodyMediaType) {
  json j = GoodManifest();
  j.erase("mediaType");
  j["config"]["mediaType"] = media::kDockerConfig;
  j["layers"] = json::array({Desc(media::kDockerLayerGzip, 'b', 10)});
  auto m = ParseManifest(j.dump(), media::kDockerManifest);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->media_type, media::kDockerManifest);
}

struct BadCase {
  std::string name;
  std::function<void(json&)> mutate;
  std::string why;
};

TEST(ManifestTest, RejectsMalformedWithReason) {
  std::vector<BadCase> cases = {
      {"schema1", [](json& j) { j["schemaVersion"] = 1; }, "schema1"},
      {"schema3", [](json& j) { j["schemaVersion"] = 3; }, "unsupported schemaVersion"},
      {"no config", [](json& j) { j.erase("config"); }, "missing `config`"},
      {"no layers", [](json& j) { j.erase("layers"); }, "missing `layers`"},
      {"bad digest", [](json& j) { j["layers"][0]["digest"] = "sha256:xyz"; }, "layers[0]"},
      {"negative size", [](json& j) { j["layers"][1]["size"] = -5; }, "layers[1]"},
      {"layer type", [](json& j) { j["layers"][0]["mediaType"] = "text/plain"; },
       "unsupported layer media type"},
      {"type mismatch", [](json& j) { j["mediaType"] = media::kDockerManifest; }, "differs"},
      {"is index", [](json& j) { j["mediaType"] = media::kOciIndex; }, "differs"},
  };
  for (auto& c : cases) {
    json j = GoodManifest();
    c.mutate(j);
    auto m = ParseManifest(j.dump(), media::kOciManifest);
    ASSERT_FALSE(m) << c.name;
    EXPECT_NE(m.error().message.find(c.why), std::string::npos)
        << c.name << ": " << m.error().message;
  }
  EXPECT_FALSE(ParseManifest("{not json", media::kOciManifest));
  EXPECT_FALSE(ParseManifest("[]", media::kOciManifest));
}

TEST(ManifestTest, Schema1MediaTypeRefused) {
  auto k = ClassifyManifest(media::kDockerSchema1Signed);
  ASSERT_FALSE(k);
  EXPECT_NE(k.error().message.find("schema1"), std::string::npos);
}

json TwoPlatformIndex() {
  json amd = Desc(media::kOciManifest, 'd', 500);
  amd["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
  json arm = Desc(media::kOciManifest, 'e', 501);
  arm["platform"] = {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}};
  json armv6 = Desc(media::kOciManifest, 'f', 502);
  armv6["platform"] = {{"os", "linux"}, {"architecture", "arm"}, {"variant", "v6"}};
  return {{"schemaVersion", 2},
          {"mediaType", media::kOciIndex},
          {"manifests", json::array({amd, arm, armv6})}};
}

TEST(ManifestTest, SelectsPlatforms) {
  auto idx = ParseIndex(TwoPlatformIndex().dump(), media::kOciIndex);
  ASSERT_TRUE(idx) << idx.error().message;
  auto pick = [&](std::string_view p) -> std::string {
    auto want = ParsePlatform(p);
    EXPECT_TRUE(want) << p;
    auto e = SelectPlatform(*idx, *want);
    return e ? e->descriptor.digest.str() : e.error().message;
  };
  EXPECT_EQ(pick("linux/amd64"), D('d'));
  EXPECT_EQ(pick("linux/arm64"), D('e'));      // v8 is arm64's default variant
  EXPECT_EQ(pick("linux/aarch64"), D('e'));
  EXPECT_EQ(pick("linux/arm/v7"), D('f'));     // v7 runs v6
  EXPECT_NE(pick("linux/arm/v5").find("no manifest for platform linux/arm/v5"), std::string::npos);
  EXPECT_NE(pick("linux/s390x").find("linux/amd64, linux/arm64/v8"), std::string::npos);
}

TEST(ManifestTest, PlatformParseErrors) {
  EXPECT_FALSE(ParsePlatform("linux"));
  EXPECT_FALSE(ParsePlatform("linux//v7"));
  EXPECT_FALSE(ParsePlatform("linux/amd64/v1/x"));
  EXPECT_FALSE(ParsePlatform("linux/am d64"));
  auto p = ParsePlatform("Linux/x86_64");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->str(), "linux/amd64");
}

TEST(ManifestTest, ConfigAndChainIds) {
  json cfg = {{"architecture", "amd64"},
              {"os", "linux"},
              {"config", {{"User", "app"}, {"Cmd", {"/bin/sh"}}, {"Env", {"A=1"}}}},
              {"rootfs", {{"type", "layers"}, {"diff_ids", {D('1'), D('2'), D('3')}}}}};
  auto c = ParseImageConfig(cfg.dump());
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->user, "app");
  ASSERT_EQ(c->diff_ids.size(), 3u);
  auto chain = ChainIds(c->diff_ids);
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0].str(), D('1'));
  EXPECT_EQ(chain[1], common::Digest::Sha256Of(D('1') + " " + D('2')));
  EXPECT_EQ(chain[2], common::Digest::Sha256Of(chain[1].str() + " " + D('3')));

  cfg["rootfs"]["diff_ids"][1] = "sha256:nothex";
  auto bad = ParseImageConfig(cfg.dump());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("diff_ids[1]"), std::string::npos);
}

}  // namespace
}  // namespace registry
