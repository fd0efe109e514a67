#include "integration/hostile/config_helpers.h"

#include <gtest/gtest.h>

#include "fixtures/image_builder.h"
#include "image/image_record.h"
#include "oci/manifest.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace hostiletest {

int64_t CountValues(const nlohmann::json& j) {
  int64_t n = 1;
  if (j.is_structured())
    for (const auto& v : j) n += CountValues(v);
  return n;
}

std::string WithEnv(const std::string& config, size_t n, size_t length) {
  auto j = nlohmann::json::parse(config);
  j["config"]["Env"] = "@ENV@";
  std::string body = j.dump();
  const std::string placeholder = "\"@ENV@\"";
  const std::string item = "\"" + std::string(length, 'e') + "\",";
  std::string env = "[";
  env.reserve(n * item.size() + 1);
  for (size_t i = 0; i < n; ++i) env += item;
  if (n > 0) env.pop_back();
  env += ']';
  body.replace(body.find(placeholder), placeholder.size(), env);
  return body;
}

namespace {

// The bytes an Env of `config` may take under the 16 MiB cap besides `[]`.
size_t EnvRoom(const std::string& config) {
  return static_cast<size_t>(oci::kMaxConfigSize) - WithEnv(config, 0, 0).size();
}

}  // namespace

std::string EmptyEnvConfig(const std::string& config) {
  return WithEnv(config, EnvRoom(config) / 3, 0);  // `"",` each
}

std::string ConfigAtTheLimits(const std::string& config) {
  auto j = nlohmann::json::parse(config);
  j["config"]["Env"] = nlohmann::json::array();
  const auto n = static_cast<size_t>(oci::kMaxConfigValues - CountValues(j));
  return WithEnv(config, n, EnvRoom(config) / n - 3);
}

void RecordWithConfig(const pulltest::Gantry& g, const std::string& base, const std::string& name,
                      const std::string& config, common::Digest* config_digest) {
  auto content = store::ContentStore::Open(g.root());
  ASSERT_TRUE(content) << content.error().message;
  auto db = store::MetadataDb::Open(g.root());
  ASSERT_TRUE(db) << db.error().message;
  auto rec = db->GetImage(base);
  ASSERT_TRUE(rec) << rec.error().message;
  auto base_manifest = common::Digest::Parse(rec->labels[std::string(image::kLabelManifest)]);
  ASSERT_TRUE(base_manifest) << base_manifest.error().message;
  auto manifest_text = content->ReadBlob(*base_manifest);
  ASSERT_TRUE(manifest_text) << manifest_text.error().message;

  *config_digest = common::Digest::Sha256Of(config);
  auto manifest = nlohmann::json::parse(*manifest_text);
  manifest["config"]["digest"] = config_digest->str();
  manifest["config"]["size"] = config.size();
  const std::string manifest_body = manifest.dump();
  const common::Digest manifest_digest = common::Digest::Sha256Of(manifest_body);
  for (const auto& [d, body] : {std::pair{*config_digest, std::string_view(config)},
                                std::pair{manifest_digest, std::string_view(manifest_body)}}) {
    auto st = content->WriteBlob(d, body);
    ASSERT_TRUE(st) << st.error().message;
  }
  auto txn = db->Begin();
  ASSERT_TRUE(txn) << txn.error().message;
  ASSERT_TRUE(txn->PutBlob(*config_digest, static_cast<int64_t>(config.size()),
                           fixtures::kMediaTypeConfig));
  ASSERT_TRUE(txn->PutBlob(manifest_digest, static_cast<int64_t>(manifest_body.size()),
                           fixtures::kMediaTypeManifest));
  rec->name = name;
  rec->target = oci::Descriptor{};
  rec->target.media_type = fixtures::kMediaTypeManifest;
  rec->target.digest = manifest_digest;
  rec->target.size = static_cast<int64_t>(manifest_body.size());
  rec->labels[std::string(image::kLabelManifest)] = manifest_digest.str();
  rec->labels[std::string(image::kLabelConfig)] = config_digest->str();
  ASSERT_TRUE(txn->PutImage(*rec));
  ASSERT_TRUE(txn->Commit());
}

}  // namespace hostiletest
