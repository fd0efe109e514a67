// The short soak: bench/soak.sh 100 with the gantry and gantry-faultproxy
// of this build (about two minutes in all). The script itself fails on any
// real failure (a crash, an unclear error, fsck problems, an image that no
// longer pulls or mounts); this test also requires from its summary that
// every kind of operation ran, that faults were injected, that processes
// were killed and that fsck was clean. The seed is random and printed;
// GANTRY_SOAK_SEED replays one.
//
// SummaryProblems is checked on canned summaries too, so that a summary
// reporting fsck problems, or missing a kind of operation, fails the test
// even if the script's own verdict were wrong.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fixtures/process.h"
#include "fixtures/require.h"

namespace soaktest {
namespace {

// Operation kinds that must each have run at least once.
const std::vector<std::string> kKinds = {"pull", "rmi", "prune", "mount", "cri_pull", "cri_remove"};

// What is wrong with a soak summary (soak_driver.py's output); empty when
// it shows every kind of operation, faults, kills, a clean fsck, an end
// check that pulled and mounted every image it checked, and PASS.
std::vector<std::string> SummaryProblems(const std::string& out) {
  std::map<std::string, long> totals;
  long faults = -1, kills = -1, real = -1, verify_images = -1, verified = -1;
  bool fsck_clean = false, pass = false;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string w0, w1, w2;
    long n = 0;
    words >> w0 >> w1;
    if (w0 == "ops" && (words >> w2 >> n) && w2 == "total")
      totals[w1] = n;
    else if (w0 == "faults" && w1 == "total" && (words >> n))
      faults = n;
    else if (w0 == "kills" && w1 == "total" && (words >> n))
      kills = n;
    else if (w0 == "real" && w1 == "failures" && (words >> n))
      real = n;
    else if (w0 == "fsck" && w1 == "clean")
      fsck_clean = true;
    else if (w0 == "verify" && w1 == "images" && (words >> verify_images >> w2) &&
             w2 == "pulled+mounted")
      words >> verified;
    else if (w0 == "soak:" && w1 == "PASS")
      pass = true;
  }
  std::vector<std::string> problems;
  for (const std::string& k : kKinds)
    if (totals[k] <= 0) problems.push_back("no `" + k + "` operation ran");
  if (faults <= 0) problems.push_back("no fault was injected");
  if (kills <= 0) problems.push_back("no process was killed");
  if (!fsck_clean) problems.push_back("fsck was not clean");
  if (verify_images <= 0)
    problems.push_back("the end check verified no image");
  else if (verified != verify_images)
    problems.push_back("not every image pulled and mounted at the end");
  if (real != 0) problems.push_back("real failures: " + std::to_string(real));
  if (!pass) problems.push_back("no `soak: PASS`");
  return problems;
}

constexpr char kGoodSummary[] =
    R"(soak: ran 100 s, seed 1, 3 pull + 1 rmi + 1 prune + 1 mount + 2 CRI workers
ops pull       total    120 ok     80 failed     20 killed    20
ops rmi        total     50 ok     30 failed     20 killed     0
ops prune      total     30 ok     25 failed      0 killed     5
ops mount      total     40 ok     30 failed      5 killed     5
ops umount     total     45 ok     40 failed      5 killed     0
ops cri_pull   total     60 ok     50 failed     10 killed     0
ops cri_remove total     30 ok     30 failed      0 killed     0
ops cri_list   total     10 ok     10 failed      0 killed     0
kills total 30 (gantry serve started 3 times)
faults total 70
fsck clean (exit codes [0, 0])
verify images 4 pulled+mounted 4 (tagged at the end 0)
real failures 0
soak: PASS
)";

TEST(SoakSummaryTest, AcceptsACompleteCleanSummary) {
  EXPECT_EQ(SummaryProblems(kGoodSummary), std::vector<std::string>{});
}

TEST(SoakSummaryTest, RejectsFsckProblemsAndMissingOperations) {
  std::string bad = kGoodSummary;
  bad.replace(bad.find("fsck clean (exit codes [0, 0])"), 30, "fsck PROBLEMS (exit codes [1, 0])");
  bad.replace(bad.find("total     30 ok     25"), 22, "total      0 ok      0");
  std::vector<std::string> problems = SummaryProblems(bad);
  EXPECT_EQ(problems, (std::vector<std::string>{"no `prune` operation ran", "fsck was not clean"}));
  EXPECT_FALSE(SummaryProblems("").empty());
}

// bench/soak.sh 120 (seed 11) once passed having verified nothing at the
// end: the removals had left no image tagged. The check now covers the
// soak's fixed set of images, and a summary without it fails.
TEST(SoakSummaryTest, RejectsAnEndCheckThatVerifiedNothingOrNotAll) {
  std::string none = kGoodSummary;
  const std::string all = "verify images 4 pulled+mounted 4";
  none.replace(none.find(all), all.size(), "verify images 0 pulled+mounted 0");
  EXPECT_EQ(SummaryProblems(none), std::vector<std::string>{"the end check verified no image"});
  std::string some = kGoodSummary;
  some.replace(some.find(all), all.size(), "verify images 4 pulled+mounted 3");
  EXPECT_EQ(SummaryProblems(some),
            std::vector<std::string>{"not every image pulled and mounted at the end"});
  std::string old = kGoodSummary;
  old.replace(old.find(all), all.size(), "verify tagged 0 pulled+mounted 0");
  EXPECT_EQ(SummaryProblems(old), std::vector<std::string>{"the end check verified no image"});
}

TEST(SoakTest, ShortSoakEndsWithCleanFsckAndEveryTaggedImagePulling) {
  REQUIRE_ROOT("loop and overlay mounts");
  REQUIRE_TOOLS("docker-registry", "skopeo", "pigz", "zstd", "mkfs.ext4", "python3");
  const char* seed_env = std::getenv("GANTRY_SOAK_SEED");
  const std::string seed =
      seed_env != nullptr ? seed_env : std::to_string(std::random_device{}() % 1000000000);
  std::printf("GANTRY_SOAK_SEED=%s\n", seed.c_str());

  auto r = fixtures::RunCommand({std::string(GANTRY_SOURCE_DIR) + "/bench/soak.sh", "100"},
                                {.env = {{"GANTRY", GANTRY_BIN},
                                         {"GANTRY_FAULTPROXY", GANTRY_FAULTPROXY_BIN},
                                         {"SOAK_SEED", seed}},
                                 .cwd = {},
                                 .stdin_data = {},
                                 .timeout = std::chrono::minutes(10)});
  ASSERT_TRUE(r) << r.error().message;
  std::printf("%s", r->out.c_str());
  ASSERT_EQ(r->exit_code, 0) << "bench/soak.sh 100 failed (seed " << seed << "):\n"
                             << r->out << "\n--- stderr:\n"
                             << r->err;
  for (const std::string& p : SummaryProblems(r->out)) ADD_FAILURE() << p;
}

}  // namespace
}  // namespace soaktest
