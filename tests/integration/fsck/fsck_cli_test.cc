// `gantry fsck [--repair] [--json]`, the real binary: line formats and exit
// status (0 clean or all repaired, 1 problems remain, 2 could not run).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "fixtures/process.h"
#include "gc/gc_store.h"

#ifndef GANTRY_BIN
#error "GANTRY_BIN must name the gantry executable"
#endif

namespace gctest {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class FsckCli : public GcStore {
 protected:
  fixtures::CommandResult Gantry(std::vector<std::string> args,
                                 const std::filesystem::path& root_dir = {}) {
    std::vector<std::string> argv = {GANTRY_BIN, "--root",
                                     (root_dir.empty() ? root() : root_dir).string()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = fixtures::RunCommand(argv);
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : fixtures::CommandResult{};
  }

  static std::vector<std::string> Lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

  void CorruptLayerA3() {
    auto p = content_->BlobPath(a_.built.layers[2].digest);
    ASSERT_EQ(::chmod(p.c_str(), 0644), 0);
    std::ofstream(p, std::ios::binary | std::ios::app) << "tail";
  }
};

TEST_P(FsckCli, ExitStatusAndLineFormats) {
  auto clean = Gantry({"fsck"});
  EXPECT_EQ(clean.exit_code, 0) << clean.Describe({"fsck"}) << clean.out;
  auto lines = Lines(clean.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines.back(), StartsWith("fsck: checked 8 blobs, 2 images, 4 snapshots"));
  EXPECT_THAT(lines.back(), HasSubstr("; 0 problems"));
  for (const auto& l : lines) EXPECT_THAT(l, ::testing::Not(StartsWith("problem:")));

  CorruptLayerA3();
  const std::string d = a_.built.layers[2].digest.str();
  auto bad = Gantry({"fsck"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  lines = Lines(bad.out);
  EXPECT_THAT(lines, Contains(StartsWith("problem: blob-corrupt " + d + ": content has digest ")));
  EXPECT_THAT(lines, Contains("problem: image " + a_.name + ": layer " + d + " is corrupt"));
  EXPECT_THAT(lines.back(), HasSubstr("; 2 problems"));

  auto js = Gantry({"fsck", "--json"});
  EXPECT_EQ(js.exit_code, 1);
  auto doc = nlohmann::json::parse(js.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << js.out;
  EXPECT_EQ(doc["problems"].size(), 2u);
  EXPECT_EQ(doc["checked"]["images"], 2);

  auto fixed = Gantry({"fsck", "--repair"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.out << fixed.err;
  lines = Lines(fixed.out);
  EXPECT_THAT(lines, Contains("repaired: deleted corrupt blob " + d));
  EXPECT_THAT(lines, Contains("repaired: untagged image " + a_.name));
  EXPECT_THAT(lines.back(), HasSubstr("2 problems, 2 repairs, 0 remaining"));

  auto again = Gantry({"fsck"});
  EXPECT_EQ(again.exit_code, 0) << again.out;
  auto images = Gantry({"images", "--format", "{{.Repository}}:{{.Tag}}"});
  EXPECT_EQ(images.out, b_.name + "\n");
}

TEST_P(FsckCli, StoreThatCannotBeOpenedExitsTwoWithOneLine) {
  auto r = Gantry({"fsck"}, dir_.path() / "no-such-store");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(Lines(r.err).size(), 1u) << r.err;
  EXPECT_THAT(r.err, StartsWith("gantry: fsck: "));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() / "no-such-store"));
}

TEST_P(FsckCli, HelpDescribesTheContract) {
  auto r = Gantry({"fsck", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("--repair"));
  EXPECT_THAT(r.out, HasSubstr("problem: <kind> <subject>: <detail>"));
  auto top = Gantry({"--help"});
  EXPECT_THAT(top.out, HasSubstr("fsck"));
}

INSTANTIATE_TEST_SUITE_P(Snapshotters, FsckCli, ::testing::Values(snapshot::Kind::kNative),
                         KindParamName);

}  // namespace
}  // namespace gctest
