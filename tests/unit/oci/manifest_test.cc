#include "oci/manifest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace oci {
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
  EXPECT_EQ(pick("linux/arm64"), D('e'));  // v8 is arm64's default variant
  EXPECT_EQ(pick("linux/aarch64"), D('e'));
  EXPECT_EQ(pick("linux/arm/v7"), D('f'));  // v7 runs v6
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

// --- what a config may contain (kMaxConfigValues, kMaxConfigDepth) -------------

// Values in a tree, counted as the limit counts them: every scalar, array
// and object.
int64_t CountValues(const json& j) {
  int64_t n = 1;
  if (j.is_structured())
    for (const auto& v : j) n += CountValues(v);
  return n;
}

json SmallConfig() {
  return {{"architecture", "amd64"},
          {"os", "linux"},
          {"config", {{"User", "app"}, {"Env", json::array()}}},
          {"rootfs", {{"type", "layers"}, {"diff_ids", {D('1')}}}}};
}

// A config whose Env makes it hold exactly `values` values.
std::string ConfigWithValues(int64_t values) {
  json cfg = SmallConfig();
  const int64_t fill = values - CountValues(cfg);
  for (int64_t i = 0; i < fill; ++i) cfg["config"]["Env"].push_back("V=" + std::to_string(i));
  EXPECT_EQ(CountValues(cfg), values);
  return cfg.dump();
}

TEST(ImageConfigLimits, ConfigAtTheValueLimitParses) {
  auto c = ParseImageConfig(ConfigWithValues(kMaxConfigValues));
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->env.size(), static_cast<size_t>(kMaxConfigValues - CountValues(SmallConfig())));
  EXPECT_EQ(c->env.back(), "V=" + std::to_string(c->env.size() - 1));
}

TEST(ImageConfigLimits, ConfigOneValueOverTheLimitIsRefused) {
  const std::string body = ConfigWithValues(kMaxConfigValues + 1);
  for (const auto& err : {ParseImageConfig(body).error(), ParseImageConfigJson(body).error()}) {
    EXPECT_EQ(err.code, common::Errc::kInvalidArgument);
    EXPECT_EQ(err.message, "parse image config: more than 100000 JSON values");
  }
}

TEST(ImageConfigLimits, MillionsOfEmptyEnvStringsAreRefused) {
  // The config of issue 20: just under 16 MiB, `Env` 5.6 million "" (a
  // 1.39 GB tree before the limit).
  std::string env;
  while (env.size() + 3 < (16u << 20) - 200) env += "\"\",";
  env.pop_back();
  const std::string body = R"({"architecture":"amd64","os":"linux","config":{"Env":[)" + env +
                           R"(]},"rootfs":{"type":"layers","diff_ids":[]}})";
  ASSERT_LE(static_cast<int64_t>(body.size()), kMaxConfigSize);
  auto c = ParseImageConfig(body);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "parse image config: more than 100000 JSON values");
}

TEST(ImageConfigLimits, DepthAtTheLimitParsesAndOneDeeperIsRefused) {
  // The top-level object is level 1; `x` nests the rest.
  auto with_depth = [](int depth) {
    json cfg = SmallConfig();
    json nested = json::array();
    for (int level = 2; level < depth; ++level) nested = json::array({nested});
    cfg["x"] = nested;
    return cfg.dump();
  };
  EXPECT_TRUE(ParseImageConfig(with_depth(kMaxConfigDepth)));
  auto deep = ParseImageConfig(with_depth(kMaxConfigDepth + 1));
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().message, "parse image config: nested deeper than 64 levels");
}

TEST(ImageConfigLimits, ConfigOverTheSizeLimitIsRefused) {
  std::string body = SmallConfig().dump();
  body.append(static_cast<size_t>(kMaxConfigSize) + 1 - body.size(), ' ');
  auto c = ParseImageConfigJson(body);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "parse image config: 16777217 bytes, over the 16 MiB limit");
  body.pop_back();
  EXPECT_TRUE(ParseImageConfigJson(body));
}

TEST(ImageConfigLimits, SeedConfigsParseAsBefore) {
  // The fuzz seeds (valid, truncated, wrong types, not an object): the
  // bounded parse accepts what json::parse accepted, with the same tree.
  const std::filesystem::path dir =
      std::filesystem::path(GANTRY_SOURCE_DIR) / "testdata/fuzz/image_config";
  int seeds = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    const json before = json::parse(text.str(), nullptr, false);
    auto now = ParseImageConfigJson(text.str());
    const bool was_object = !before.is_discarded() && before.is_object();
    ASSERT_EQ(now.has_value(), was_object) << e.path();
    if (now) {
      EXPECT_EQ(*now, before) << e.path();
    }
    ++seeds;
  }
  EXPECT_GE(seeds, 10);
}

// One compression enum (oci/compression.h) for what a layer media type
// declares and what the unpacker decodes.
TEST(ManifestTest, LayerCompressionOfLayerMediaTypes) {
  const std::pair<std::string_view, Compression> cases[] = {
      {media::kOciLayer, Compression::kNone},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", Compression::kNone},
      {media::kOciLayerGzip, Compression::kGzip},
      {media::kDockerLayerGzip, Compression::kGzip},
      {media::kDockerForeignLayerGzip, Compression::kGzip},
      {media::kOciLayerZstd, Compression::kZstd},
  };
  for (const auto& [media_type, want] : cases) {
    auto c = LayerCompressionOf(media_type);
    ASSERT_TRUE(c) << media_type << ": " << c.error().message;
    EXPECT_EQ(*c, want) << media_type;
  }
  for (std::string_view not_a_layer :
       {media::kOciConfig, media::kOciManifest, std::string_view("")}) {
    auto c = LayerCompressionOf(not_a_layer);
    ASSERT_FALSE(c) << not_a_layer;
    EXPECT_EQ(c.error().code, common::Errc::kInvalidArgument);
  }
  EXPECT_EQ(CompressionName(Compression::kNone), "none");
  EXPECT_EQ(CompressionName(Compression::kGzip), "gzip");
  EXPECT_EQ(CompressionName(Compression::kZstd), "zstd");
}

}  // namespace
}  // namespace oci
