// image::LoadTrustPolicy (image/trust_gate.h): the default policy file is
// optional, a named one is not; registries.d is read with it; errors name
// the file. The gate itself is exercised through the CLI in
// tests/integration/trust (trust_gate_test) and against skopeo in
// trust_crosscheck_test.

#include "image/trust_gate.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/fs.h"

namespace image {
namespace {

namespace fs = std::filesystem;

class LoadTrust : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("gantry-trust-load");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
  }
  fs::path Write(const std::string& name, const std::string& text) {
    fs::path p = dir_.path() / name;
    EXPECT_TRUE(common::MkdirAll(p.parent_path()));
    auto w = common::AtomicWriteFile(p, text);
    EXPECT_TRUE(w) << w.error().message;
    return p;
  }
  common::TempDir dir_;
};

TEST_F(LoadTrust, AbsentDefaultPolicyAcceptsEverything) {
  auto t = LoadTrustPolicy(
      {.policy = dir_.path() / "policy.json", .registries_d = dir_.path() / "registries.d"});
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_NE(*t, nullptr);
  EXPECT_FALSE((*t)->policy.has_value());
  EXPECT_EQ((*t)->policy_file, "");
}

TEST_F(LoadTrust, NamedPolicyMustExist) {
  const fs::path missing = dir_.path() / "policy.json";
  auto t = LoadTrustPolicy({.policy = missing, .policy_required = true});
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, common::Errc::kNotFound);
  EXPECT_NE(t.error().message.find("signature policy: "), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find(missing.string()), std::string::npos) << t.error().message;
}

TEST_F(LoadTrust, ReadsPolicyAndRegistriesD) {
  const fs::path policy = Write("policy.json", R"({"default": [{"type": "reject"}]})");
  Write("registries.d/a.yaml", "default-docker:\n  lookaside: https://sigs.example.com\n");
  auto t = LoadTrustPolicy({.policy = policy, .registries_d = dir_.path() / "registries.d"});
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_TRUE((*t)->policy.has_value());
  EXPECT_EQ((*t)->policy->default_requirements.front().type, trust::RequirementType::kReject);
  EXPECT_EQ((*t)->policy_file, policy.string());
  ASSERT_TRUE((*t)->registries.default_docker.has_value());
  EXPECT_EQ((*t)->registries.default_docker->ReadUrl(), "https://sigs.example.com");
}

TEST_F(LoadTrust, BrokenFilesAreOneLineErrorsNamingThem) {
  const fs::path policy = Write("policy.json", R"({"default": [{"type": "sometimes"}]})");
  auto bad_policy = LoadTrustPolicy({.policy = policy});
  ASSERT_FALSE(bad_policy);
  EXPECT_EQ(bad_policy.error().code, common::Errc::kInvalidArgument);
  EXPECT_NE(bad_policy.error().message.find(policy.string()), std::string::npos);
  EXPECT_EQ(bad_policy.error().message.find('\n'), std::string::npos);

  const fs::path good = Write("good.json", R"({"default": [{"type": "reject"}]})");
  const fs::path yaml = Write("registries.d/b.yaml", "docker:\n  busybox:\n    lookaside: x\n");
  auto bad_dir = LoadTrustPolicy({.policy = good, .registries_d = yaml.parent_path()});
  ASSERT_FALSE(bad_dir);
  EXPECT_EQ(bad_dir.error().code, common::Errc::kInvalidArgument);
  EXPECT_NE(bad_dir.error().message.find(yaml.string()), std::string::npos)
      << bad_dir.error().message;
}

}  // namespace
}  // namespace image
