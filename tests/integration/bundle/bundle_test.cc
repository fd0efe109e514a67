// `gantry bundle` end to end: the fixture image pulled from an OCI layout,
// made into a bundle, run unchanged under runc and crun, observed from
// inside the container; `gantry bundle rm` leaves no mount, snapshot or file.
//
// Needs root (mounts, runtimes); every test skips with the reason otherwise,
// and runc and crun are required (scripts/setup.sh installs them).

#include "bundle/bundle.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/crun.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/require.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The store, with the fixture image pulled, shared by every test of the
// program (pulling once keeps the suite fast; each test has its own bundle
// directories and container ids).
struct Store {
  common::TempDir dir;
  fs::path root;
  std::string image;  // the pulled image's name
};
Store* g_store = nullptr;
std::string g_store_error;

std::vector<std::string> GantryArgv(const std::vector<std::string>& args,
                                    const std::vector<std::string>& global = {}) {
  std::vector<std::string> argv = {GANTRY_BIN, "--root", g_store->root.string(),
                                   "--registry-config", (g_store->dir.path() / "certs.d").string()};
  argv.insert(argv.end(), global.begin(), global.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

fixtures::CommandResult Gantry(const std::vector<std::string>& args,
                               const std::vector<std::string>& global = {}) {
  auto argv = GantryArgv(args, global);
  fixtures::RunOptions o;
  o.env = {{"NO_PROXY", "*"}};
  o.cwd = g_store->dir.path();
  o.timeout = std::chrono::seconds(120);
  auto r = fixtures::RunCommand(argv, o);
  EXPECT_TRUE(r) << r.error().message;
  if (!r) return {};
  return *r;
}

fixtures::RunOptions Timeout(std::chrono::milliseconds t) {
  fixtures::RunOptions o;
  o.timeout = t;
  return o;
}

std::string Describe(const std::vector<std::string>& argv, const fixtures::CommandResult& r) {
  return r.Describe(argv) + "\nstdout: " + r.out;
}

class BundleEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (::geteuid() != 0) return;
    auto dir = common::TempDir::Create("gantry-bundle-it");
    if (!dir) {
      g_store_error = dir.error().message;
      return;
    }
    auto* s = new Store{.dir = std::move(*dir), .root = {}, .image = {}};
    s->root = s->dir.path() / "root";
    g_store = s;
    const fs::path layout = s->dir.path() / "layout";
    auto img = fixtures::WriteImage(layout, fixtures::FixtureImageSpec(), "v1");
    if (!img) {
      g_store_error = "write fixture image: " + img.error().message;
      return;
    }
    if (auto st = common::MkdirAll(s->dir.path() / "certs.d"); !st) {
      g_store_error = st.error().message;
      return;
    }
    auto pull = Gantry({"pull", "oci:" + layout.string() + ":v1"});
    if (pull.exit_code != 0) {
      g_store_error = "pull: " + pull.err;
      return;
    }
    s->image = "localhost/layout:v1";
  }
  void TearDown() override {
    delete g_store;
    g_store = nullptr;
  }
};

const auto* const g_env = ::testing::AddGlobalTestEnvironment(new BundleEnvironment);

#define BUNDLE_SKIP_UNLESS_READY()                                             \
  do {                                                                         \
    REQUIRE_ROOT("mounts, runtimes");                                          \
    ASSERT_TRUE(g_store != nullptr && g_store_error.empty()) << g_store_error; \
  } while (0)

std::vector<std::string> MountPoints() {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    out.push_back(point);
  }
  return out;
}

bool IsMounted(const fs::path& p) {
  for (const auto& m : MountPoints())
    if (m == p.string()) return true;
  return false;
}

std::vector<std::string> SnapshotKeys(const std::vector<std::string>& global = {}) {
  std::vector<std::string> keys;
  auto r = Gantry({"snapshot", "ls", "--json"}, global);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_array()) << r.out;
  if (!j.is_array()) return keys;
  for (const auto& s : j) keys.push_back(s["key"]);
  return keys;
}

bool HasSnapshot(const std::string& key, const std::vector<std::string>& global = {}) {
  auto keys = SnapshotKeys(global);
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

std::atomic<int> g_counter{0};

// One test's bundles and containers, all removed at the end whatever happened.
class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BUNDLE_SKIP_UNLESS_READY();
    auto d = common::TempDir::Create("gantry-bundle-case");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
  }

  void TearDown() override {
    for (const auto& [runtime, id] : containers_) {
      auto argv = RuntimeArgv(runtime, {"delete", "-f", id});
      (void)fixtures::RunCommand(argv, Timeout(std::chrono::seconds(30)));
    }
    for (const auto& [b, global] : bundles_) {
      if (fs::exists(b / bundle::kBundleStateFile))
        (void)Gantry({"bundle", "rm", b.string()}, global);
    }
  }

  fs::path NewBundleDir() { return dir_.path() / ("b" + std::to_string(g_counter.fetch_add(1))); }

  // `gantry bundle IMAGE DIR args…`, expecting exit 0.
  fs::path MakeBundle(const std::vector<std::string>& args,
                      const std::vector<std::string>& global = {}) {
    fs::path b = NewBundleDir();
    std::vector<std::string> a = {"bundle", g_store->image, b.string()};
    a.insert(a.end(), args.begin(), args.end());
    bundles_.push_back({b, global});
    auto r = Gantry(a, global);
    EXPECT_EQ(r.exit_code, 0) << Describe(GantryArgv(a, global), r);
    return b;
  }

  std::vector<std::string> RuntimeArgv(const std::string& runtime,
                                       const std::vector<std::string>& args) {
    const std::string state = (dir_.path() / ("state-" + runtime)).string();
    std::vector<std::string> argv;
    if (runtime == "crun") {
      argv = fixtures::CrunCommand();
    } else if (runtime == "gantry") {
      argv = {GANTRY_BIN, "runtime"};  // gantry-runtime's code, through the CLI
    } else {
      argv = {runtime};
    }
    argv.push_back("--root");
    argv.push_back(state);
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // `RUNTIME run --bundle B ID` to completion.
  fixtures::CommandResult Run(const std::string& runtime, const fs::path& bundle) {
    std::string id =
        "gantry-bt-" + std::to_string(::getpid()) + "-" + std::to_string(g_counter.fetch_add(1));
    containers_.push_back({runtime, id});
    auto argv = RuntimeArgv(runtime, {"run", "--bundle", bundle.string(), id});
    auto r = fixtures::RunCommand(argv, Timeout(std::chrono::seconds(60)));
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : fixtures::CommandResult{};
  }

  common::TempDir dir_;
  std::vector<std::pair<fs::path, std::vector<std::string>>> bundles_;
  std::vector<std::pair<std::string, std::string>> containers_;
};

// ---- under each runtime ----------------------------------------------------------

class BundleRun : public BundleTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    BundleTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (std::string(GetParam()) != "gantry") REQUIRE_TOOLS(GetParam(), "unshare");
  }
  fixtures::CommandResult Run(const fs::path& bundle) {
    return BundleTest::Run(GetParam(), bundle);
  }
};

TEST_P(BundleRun, EchoHelloExitsZero) {
  fs::path b = MakeBundle({"--", "/bin/echo", "hello"});
  auto r = Run(b);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello\n") << r.err;
}

TEST_P(BundleRun, ExitStatusOfTheCommandIsTheRuntimes) {
  fs::path b = MakeBundle({"--", "/bin/sh", "-c", "exit 7"});
  EXPECT_EQ(Run(b).exit_code, 7);
}

TEST_P(BundleRun, UserAppHasItsUidGidAndGroups) {
  fs::path b = MakeBundle({"--user", "app", "--", "/bin/id"});
  auto r = Run(b);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("uid=1000(app)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("gid=1000(app)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("10(wheel)"), std::string::npos) << r.out;
}

TEST_P(BundleRun, EnvOverrideIsVisibleWithTheImagePath) {
  fs::path b = MakeBundle({"--env", "A=B", "--", "/bin/sh", "-c", "echo \"A=$A\"; echo \"$PATH\""});
  auto r = Run(b);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "A=B\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
}

TEST_P(BundleRun, ReadonlyRootRefusesWrites) {
  fs::path ro = MakeBundle({"--readonly", "--", "/bin/sh", "-c", "touch /x"});
  auto r = Run(ro);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.err;
  // Without --readonly the write lands in the bundle's own snapshot.
  fs::path rw = MakeBundle({"--", "/bin/sh", "-c", "touch /x && echo ok"});
  auto w = Run(rw);
  EXPECT_EQ(w.exit_code, 0) << w.err;
  EXPECT_EQ(w.out, "ok\n");
  EXPECT_TRUE(fs::exists(rw / "rootfs/x"));
  EXPECT_FALSE(fs::exists(ro / "rootfs/x"));
}

TEST_P(BundleRun, DefaultsAsSeenFromInside) {
  fs::path b =
      MakeBundle({"--hostname", "box", "--", "/bin/sh", "-c",
                  "echo $$; hostname; pwd; grep -E '^Cap(Bnd|Eff|Inh|Amb)' /proc/self/status; "
                  "grep NoNewPrivs /proc/self/status; ulimit -n; cat /proc/kcore | wc -c"});
  auto r = Run(b);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Docker's default set: 0xa80425fb.
  EXPECT_EQ(r.out,
            "1\nbox\n/\nCapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\n"
            "CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n1024\n0\n")
      << r.err;
}

TEST_P(BundleRun, RmUnmountsAndRemovesTheSnapshot) {
  fs::path b = MakeBundle({"--", "/bin/true"});
  const std::string key = bundle::BundleSnapshotKey(b);
  EXPECT_TRUE(IsMounted(b / "rootfs"));
  EXPECT_TRUE(HasSnapshot(key));
  auto r = Run(b);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto rm = Gantry({"bundle", "rm", b.string()});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_FALSE(IsMounted(b / "rootfs"));
  EXPECT_FALSE(HasSnapshot(key));
  EXPECT_FALSE(fs::exists(b)) << "the directory was created by gantry bundle";
}

// --userns: config.json gets the user namespace, the snapshot is chown'd
// to the host range, so root inside owns its files and what it creates
// belongs to host uid 100000.
TEST_P(BundleRun, UsernsBundleRunsAsMappedRoot) {
  // The container's root (host 100000) must reach the bundle to bind it.
  fs::permissions(dir_.path(),
                  fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  fs::path b = MakeBundle({"--userns", "0:100000:65536", "--", "/bin/sh", "-c",
                           "cat /proc/self/uid_map; id -u; stat -c '%u %g %a' /bin/busybox "
                           "/usr/bin/su-test; touch /made-inside && echo made"});
  auto r = Run(b);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  EXPECT_EQ(words, (std::vector<std::string>{"0", "100000", "65536", "0", "0", "0", "755", "0", "0",
                                             "4755", "made"}))
      << r.out;
  struct stat st {};
  ASSERT_EQ(::lstat((b / "rootfs/made-inside").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 100000u);
  ASSERT_EQ(::lstat((b / "rootfs/usr/bin/su-test").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 100000u);
  EXPECT_EQ(st.st_mode & 07777, 04755u);  // chown cleared setuid; it was put back
  char caps[64];
  EXPECT_GT(::lgetxattr((b / "rootfs/usr/bin/cap-test").c_str(), "security.capability", caps,
                        sizeof caps),
            0)
      << "security.capability lost";
}

INSTANTIATE_TEST_SUITE_P(BundleRuntimes, BundleRun, ::testing::Values("runc", "crun", "gantry"),
                         [](const auto& p) { return std::string(p.param); });

// ---- without a runtime, or with runc only --------------------------------------------

class BundleCli : public BundleTest {
 protected:
  void SetUp() override {
    BundleTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    REQUIRE_TOOLS("runc");
  }
};

TEST_F(BundleCli, ConfigJsonFromTheImage) {
  fs::path b = MakeBundle({"--env", "X=1"});
  auto text = common::ReadFile(b / "config.json");
  ASSERT_TRUE(text) << text.error().message;
  json spec = json::parse(*text);
  EXPECT_EQ(spec["process"]["args"], json({"/bin/sh"}));
  EXPECT_EQ(spec["annotations"]["org.opencontainers.image.title"], "gantry-fixture");
  EXPECT_EQ(spec["root"]["path"], "rootfs");
  EXPECT_TRUE(fs::exists(b / "rootfs/hello.txt"));
  auto state = bundle::ReadBundleState(b);
  ASSERT_TRUE(state && state->has_value());
  EXPECT_EQ((*state)->image, g_store->image);
  EXPECT_EQ((*state)->snapshot, bundle::BundleSnapshotKey(b));
  EXPECT_EQ((*state)->root, g_store->root);
  EXPECT_TRUE((*state)->mounted);
}

TEST_F(BundleCli, NoMountWritesTheMountsAndRunsOnceMounted) {
  fs::path b = MakeBundle({"--no-mount", "--user", "app", "--", "/bin/id", "-u"});
  EXPECT_FALSE(IsMounted(b / "rootfs"));
  EXPECT_TRUE(fs::is_empty(b / "rootfs"));
  auto file = common::ReadFile(b / bundle::kBundleMountsFile);
  ASSERT_TRUE(file) << file.error().message;
  json mounts = json::parse(*file);
  ASSERT_EQ(mounts["commands"].size(), 1u) << mounts.dump(2);
  EXPECT_EQ(mounts["target"], (b / "rootfs").string());
  auto spec = json::parse(*common::ReadFile(b / "config.json"));
  json annotated = json::parse(
      spec["annotations"][std::string(bundle::kAnnotationRootfsMounts)].get<std::string>());
  EXPECT_EQ(annotated, mounts["mounts"]);
  // The user was still resolved through the image's /etc/passwd.
  EXPECT_EQ(spec["process"]["user"]["uid"], 1000);

  // What the documentation says to do: run the mount command, then runc.
  const std::string cmd = mounts["commands"][0];
  auto m = fixtures::RunCommand({"sh", "-c", cmd});
  ASSERT_TRUE(m && m->exit_code == 0) << cmd << ": " << (m ? m->err : m.error().message);
  EXPECT_TRUE(IsMounted(b / "rootfs"));
  auto r = Run("runc", b);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1000\n");

  auto rm = Gantry({"bundle", "rm", b.string()});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_FALSE(IsMounted(b / "rootfs"));
  EXPECT_FALSE(HasSnapshot(bundle::BundleSnapshotKey(b)));
  EXPECT_FALSE(fs::exists(b));
}

TEST_F(BundleCli, NativeSnapshotterBundleRunsUnderRunc) {
  const std::vector<std::string> native = {"--snapshotter", "native"};
  fs::path b = MakeBundle({"--", "/bin/cat", "/hello.txt"}, native);
  EXPECT_TRUE(IsMounted(b / "rootfs"));
  auto r = Run("runc", b);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello from gantry\n");
  auto rm = Gantry({"bundle", "rm", b.string()});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_FALSE(IsMounted(b / "rootfs"));
  EXPECT_FALSE(HasSnapshot(bundle::BundleSnapshotKey(b), native));
}

// mount(2) copies one page of options: an overlay of this many layers under
// this store's root needs the fsopen/fsconfig "lowerdir+" path.
TEST_F(BundleCli, ManyLayersBeyondOnePageOfMountOptions) {
  constexpr int kExtra = 120;
  fixtures::ImageSpec spec = fixtures::FixtureImageSpec();
  for (int i = 0; i < kExtra; ++i) {
    fixtures::LayerSpec l;
    if (i == 0) l.entries.push_back(fixtures::Dir("layers/"));
    l.entries.push_back(fixtures::File("layers/" + std::to_string(i), std::to_string(i) + "\n"));
    spec.layers.push_back(std::move(l));
  }
  const fs::path layout = dir_.path() / "many";
  auto img = fixtures::WriteImage(layout, spec, "v1");
  ASSERT_TRUE(img) << img.error().message;
  auto pull = Gantry({"pull", "oci:" + layout.string() + ":v1"});
  ASSERT_EQ(pull.exit_code, 0) << pull.err;

  fs::path b = NewBundleDir();
  bundles_.push_back({b, {}});
  const std::vector<std::string> args = {"bundle",      "localhost/many:v1", b.string(),
                                         "--",          "/bin/cat",          "/layers/0",
                                         "/layers/119", "/hello.txt"};
  auto r = Gantry(args);
  ASSERT_EQ(r.exit_code, 0) << Describe(GantryArgv(args), r);
  auto mounts = Gantry({"snapshot", "mounts", bundle::BundleSnapshotKey(b)});
  ASSERT_EQ(mounts.exit_code, 0) << mounts.err;
  json mj = json::parse(mounts.out, nullptr, false);
  ASSERT_TRUE(mj.is_array() && mj.size() == 1) << mounts.out;
  size_t options = 0;
  for (const auto& o : mj[0]["options"]) options += o.get<std::string>().size() + 1;
  EXPECT_GT(options, 4096u) << "the options fit one page: this tests nothing";
  EXPECT_TRUE(IsMounted(b / "rootfs"));
  auto run = Run("runc", b);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "0\n119\nhello from gantry\n");
  auto rm = Gantry({"bundle", "rm", b.string()});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_FALSE(IsMounted(b / "rootfs"));
  (void)Gantry({"rmi", "localhost/many:v1"});
}

TEST_F(BundleCli, SecondBundleInTheSameDirectoryIsRefused) {
  fs::path b = MakeBundle({});
  auto again = Gantry({"bundle", g_store->image, b.string()});
  EXPECT_EQ(again.exit_code, 8) << again.err;
  EXPECT_NE(again.err.find("gantry bundle rm"), std::string::npos) << again.err;
  // The first bundle is intact.
  EXPECT_TRUE(IsMounted(b / "rootfs"));
  EXPECT_TRUE(fs::exists(b / "config.json"));
}

TEST_F(BundleCli, UnknownUserFailsAndLeavesNothing) {
  fs::path b = NewBundleDir();
  auto r = Gantry({"bundle", g_store->image, b.string(), "--user", "ghost"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("`ghost`"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/etc/passwd"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(b));
  EXPECT_FALSE(IsMounted(b / "rootfs"));
  EXPECT_FALSE(HasSnapshot(bundle::BundleSnapshotKey(b)));
}

TEST_F(BundleCli, ExistingEmptyDirectoryIsKeptByRm) {
  fs::path b = NewBundleDir();
  ASSERT_TRUE(common::MkdirAll(b));
  bundles_.push_back({b, {}});
  auto r = Gantry({"bundle", g_store->image, b.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rm = Gantry({"bundle", "rm", b.string()});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_TRUE(fs::is_directory(b));
  EXPECT_TRUE(fs::is_empty(b));
}

TEST_F(BundleCli, RmWithoutStateFileFindsTheSnapshotByDirectory) {
  fs::path b = MakeBundle({});
  ASSERT_TRUE(fs::remove(b / bundle::kBundleStateFile));
  auto rm = Gantry({"bundle", "rm", b.string()});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_FALSE(IsMounted(b / "rootfs"));
  EXPECT_FALSE(HasSnapshot(bundle::BundleSnapshotKey(b)));
}

TEST_F(BundleCli, RmOfADirectoryThatIsNoBundleIsNotFound) {
  fs::path b = NewBundleDir();
  ASSERT_TRUE(common::MkdirAll(b));
  auto rm = Gantry({"bundle", "rm", b.string()});
  EXPECT_EQ(rm.exit_code, 3) << rm.err;
  EXPECT_TRUE(fs::is_directory(b));
}

TEST_F(BundleCli, UnknownGroupFailsAndLeavesNothing) {
  fs::path b = NewBundleDir();
  auto r = Gantry({"bundle", g_store->image, b.string(), "--user", "app:nogroup"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("`nogroup`"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/etc/group"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(b));
}

}  // namespace
