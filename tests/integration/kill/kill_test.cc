// Crash safety of `gantry pull` (the real binary, which unpacks): SIGKILLed
// at random points, then pulled again to completion; and `gantry prune`
// run over and over while a pull is in flight.
//
// After every recovery pull, each committed snapshot named by a chainID
// holds exactly that layer (its own directory equals the reference
// unpack's, entry by entry: type, mode, ids, size, SHA-256, link target,
// rdev, xattrs incl. overlay's), a read-only view of the top chain mounts
// to the reference rootfs, no extract snapshot was ever committed, and
// `gantry images` lists the image. Then `gantry prune` removes what the
// kills left (extract snapshots; partial downloads only once they are old
// enough) and a further pull still works.
//
// Kill points: the rounds take turns at four progress signals to wait for
// (the child started, the proxy saw its k-th request, a partial download
// exists in content/ingest, the k-th snapshot directory exists), and each
// draws from a seeded RNG (GANTRY_KILL_SEED overrides; the seed is
// printed) k and a delay before the SIGKILL, within what the reference
// pull took. The signals are polled, never slept on; the
// delay after them is a deliberate random sleep: it is what spreads the
// kills over every instruction of the pull (between the progress signals
// there is nothing to observe from outside), so it is bounded and drawn,
// not tuned.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "fixtures/require.h"
#include "fixtures/tree_walk.h"
#include "integration/pull/pull_helpers.h"
#include "snapshot/mount.h"
#include "snapshot/snapshotter.h"
#include "store/metadata.h"

namespace killtest {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using pulltest::Describe;
using pulltest::Gantry;
using std::chrono::milliseconds;

constexpr int kKillRounds = 20;
constexpr int kPruneRaceRounds = 5;
constexpr char kRepo[] = "kill/app:v1";

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// The fixture image plus two layers that make a pull last long enough to
// be interrupted anywhere: 6 MiB of incompressible bytes (download and
// hashing), and 1,500 small files in 30 directories (unpack).
fixtures::ImageSpec KillImageSpec() {
  fixtures::ImageSpec spec = fixtures::FixtureImageSpec();
  std::mt19937_64 rng(42);  // fixed: the image is the same in every run
  std::string random(6u << 20, '\0');
  for (size_t i = 0; i + 8 <= random.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(random.data() + i, &v, 8);
  }
  fixtures::LayerSpec big;
  big.entries = {fixtures::Dir("opt/"), fixtures::File("opt/random.bin", random)};
  fixtures::LayerSpec many;
  many.entries.push_back(fixtures::Dir("srv/"));
  for (int d = 0; d < 30; ++d) {
    std::string dir = "srv/d" + std::to_string(d) + "/";
    many.entries.push_back(fixtures::Dir(dir));
    for (int f = 0; f < 50; ++f) {
      std::string body(1024 + (rng() % 3072), '\0');
      for (auto& c : body) c = static_cast<char>('a' + rng() % 26);
      many.entries.push_back(
          fixtures::File(dir + "f" + std::to_string(f), body, f % 7 == 0 ? 0755 : 0644));
    }
  }
  spec.layers.push_back(std::move(big));
  spec.layers.push_back(std::move(many));
  return spec;
}

// chainIDs of the OCI image-spec: chain[0] = diff[0],
// chain[i] = sha256(chain[i-1] + " " + diff[i]).
std::vector<common::Digest> ChainIds(const std::vector<common::Digest>& diff_ids) {
  std::vector<common::Digest> out;
  for (const auto& d : diff_ids) {
    if (out.empty())
      out.push_back(d);
    else
      out.push_back(common::Digest::Sha256Of(out.back().str() + " " + d.str()));
  }
  return out;
}

// Mount points under `dir` in this mount namespace (gantry children share it).
std::vector<std::string> MountsUnder(const fs::path& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream is(line);
    std::string id, parent, devs, root, mnt;
    is >> id >> parent >> devs >> root >> mnt;
    if (mnt.starts_with(dir.string() + "/")) out.push_back(mnt);
  }
  return out;
}

// SIGKILLs `c` unless it has exited. Only Child reaps it, so until Exited()
// says so its pid cannot have been reused: at worst it is a zombie.
void KillUnlessExited(fixtures::Child& c) {
  if (!c.Exited() && c.pid() > 0) ::kill(c.pid(), SIGKILL);
}

int CountEntries(const fs::path& dir) {
  std::error_code ec;
  int n = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) ++n;
  return n;
}

// What the reference unpack made: each layer's own directory and the
// mounted rootfs.
struct Reference {
  std::vector<common::Digest> chains;
  std::vector<fixtures::Tree> layers;
  fixtures::Tree rootfs;
};

// What the tests share, set up by the first of them: the registry with the
// image behind the fault proxy, and the reference pull.
struct Env {
  common::TempDir work;
  std::unique_ptr<fixtures::RegistryFixture> reg;
  std::unique_ptr<fixtures::FaultProxy> proxy;
  fixtures::BuiltImage image;
  std::string ref;  // the image through the proxy
  std::unique_ptr<Gantry> ref_store;
  Reference reference;
  Clock::duration pull_time{};     // an uninterrupted pull
  Clock::duration unpack_start{};  // when its first snapshot directory appeared
  int requests = 0;                // requests it made
};

class KillTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { env_.reset(); }

  void SetUp() override {
    REQUIRE_ROOT("overlay mounts of the unpacked image");
    REQUIRE_TOOLS("docker-registry", "skopeo");
    const char* seed = std::getenv("GANTRY_KILL_SEED");
    seed_ = seed != nullptr ? std::strtoull(seed, nullptr, 10) : std::random_device{}();
    std::printf("GANTRY_KILL_SEED=%llu\n", static_cast<unsigned long long>(seed_));
    rng_.seed(seed_);
    if (!env_) {
      auto env = std::make_unique<Env>();
      auto d = common::TempDir::Create("gantry-kill");
      ASSERT_TRUE(d) << d.error().message;
      env->work = std::move(*d);
      ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &env->reg));
      ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(*env->reg, env->work.path() / "layout",
                                                  KillImageSpec(), kRepo, &env->image));
      ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*env->reg, &env->proxy));
      env->ref = env->proxy->host() + "/" + kRepo;
      ASSERT_NO_FATAL_FAILURE(MakeReference(*env));
      env_ = std::move(env);
    }
    env_->proxy->ClearRules();
    env_->proxy->ClearLog();
  }

  void TearDown() override {
    // Nothing may stay mounted under the test's directories.
    for (const auto& g : stores_)
      for (const auto& m : MountsUnder(g->dir())) ADD_FAILURE() << "left mounted: " << m;
  }

  static std::unique_ptr<Gantry> NewStore() {
    auto g = Gantry::Create();
    EXPECT_TRUE(g) << g.error().message;
    return g ? std::make_unique<Gantry>(std::move(*g)) : nullptr;
  }

  // `gantry pull` arguments after "pull" (PullOk adds it).
  static std::vector<std::string> PullFlags(const Env& e) {
    return {"--plain-http", "--max-concurrent-downloads", "1", e.ref};
  }
  static std::vector<std::string> PullArgs(const Env& e) {
    std::vector<std::string> a = PullFlags(e);
    a.insert(a.begin(), "pull");
    return a;
  }
  std::vector<std::string> PullFlags() const { return PullFlags(*env_); }
  std::vector<std::string> PullArgs() const { return PullArgs(*env_); }

  // The snapshotter of a store, as `gantry pull` opened it.
  static std::unique_ptr<snapshot::Snapshotter> OpenSnapshots(const Gantry& g) {
    auto sn =
        snapshot::Open(g.root(), {.kind = snapshot::Kind::kOverlay, .fallback_to_native = false});
    EXPECT_TRUE(sn) << sn.error().message;
    return sn ? std::move(*sn) : nullptr;
  }

  // The rootfs of a read-only view of `top`, walked and unmounted.
  static fixtures::Tree RootfsOf(snapshot::Snapshotter& sn, const std::string& top,
                                 const fs::path& mnt) {
    const std::string key = "kill-test-view";
    auto view = sn.View(key, top);
    EXPECT_TRUE(view) << view.error().message;
    if (!view) return {};
    fixtures::Tree out;
    {
      EXPECT_TRUE(common::MkdirAll(mnt));
      auto guard = snapshot::MountAt(*view, mnt);
      EXPECT_TRUE(guard) << guard.error().message;
      if (guard) {
        auto t = fixtures::WalkTree(mnt);
        EXPECT_TRUE(t) << t.error().message;
        if (t) out = std::move(*t);
        EXPECT_TRUE(guard->Unmount());
      }
    }
    EXPECT_TRUE(sn.Remove(key));
    return out;
  }

  static fixtures::Tree LayerTree(snapshot::Snapshotter& sn, const std::string& chain) {
    auto dir = sn.FsDir(chain);
    EXPECT_TRUE(dir) << dir.error().message;
    if (!dir) return {};
    auto t = fixtures::WalkTree(*dir, {.skip_mechanics_xattrs = false});
    EXPECT_TRUE(t) << t.error().message;
    return t ? std::move(*t) : fixtures::Tree{};
  }

  // Pulls once, uninterrupted, into a store of its own: the reference trees
  // and how long a pull and its phases take here.
  static void MakeReference(Env& e) {
    e.ref_store = NewStore();
    ASSERT_TRUE(e.ref_store);
    Gantry& g = *e.ref_store;
    e.proxy->ClearLog();
    const auto t0 = Clock::now();
    auto child = g.Spawn(PullArgs(e), g.dir() / "pull.out", g.dir() / "pull.err");
    ASSERT_TRUE(child) << child.error().message;
    bool unpacking = false;
    ASSERT_TRUE(fixtures::WaitUntil(
        [&] {
          if (!unpacking && CountEntries(g.root() / "snapshots") > 0) {
            unpacking = true;
            e.unpack_start = Clock::now() - t0;
          }
          return child->Exited();
        },
        std::chrono::seconds(120), milliseconds(1)));
    auto status = child->Wait();
    e.pull_time = Clock::now() - t0;
    ASSERT_TRUE(status && *status == 0) << "the reference pull failed";
    e.requests = static_cast<int>(e.proxy->Log().size());
    e.reference.chains = ChainIds(e.image.diff_ids);
    auto sn = OpenSnapshots(g);
    ASSERT_TRUE(sn);
    for (const auto& c : e.reference.chains) e.reference.layers.push_back(LayerTree(*sn, c.str()));
    e.reference.rootfs = RootfsOf(*sn, e.reference.chains.back().str(), g.dir() / "mnt");
    ASSERT_GT(e.reference.rootfs.size(), 1500u);
    ASSERT_TRUE(e.reference.rootfs.count("opt/random.bin"));
    std::printf(
        "reference pull: %.0f ms (unpack from %.0f ms), %d requests, %zu layers, "
        "%zu rootfs entries\n",
        Ms(e.pull_time), Ms(e.unpack_start), e.requests, e.reference.chains.size(),
        e.reference.rootfs.size());
  }

  // The store after a completed pull: every chain committed with its
  // parent and holding exactly its layer (`layers`: checked directory by
  // directory too, not only through the mounted rootfs), the image listed,
  // nothing left mounted. Returns the keys of extract snapshots left by
  // killed runs.
  std::set<std::string> ExpectComplete(const Gantry& g, bool layers = true) {
    std::set<std::string> extract;
    auto sn = OpenSnapshots(g);
    if (!sn) return extract;
    auto list = sn->List();
    EXPECT_TRUE(list) << list.error().message;
    if (!list) return extract;
    std::map<std::string, snapshot::Info> committed;
    for (const auto& i : *list) {
      if (i.kind == snapshot::SnapshotKind::kCommitted) {
        committed[i.name] = i;
        EXPECT_TRUE(i.name.starts_with("sha256:"))
            << "committed snapshot not named by chainID: " << i.name;
        EXPECT_EQ(i.labels.count("io.gantry.extract"), 0u)
            << "extract snapshot committed: " << i.name;
      } else if (i.name.starts_with("extract-")) {
        extract.insert(i.name);
      } else {
        ADD_FAILURE() << "unexpected " << snapshot::SnapshotKindName(i.kind) << " snapshot "
                      << i.name;
      }
    }
    std::set<std::string> want;
    for (const auto& c : env_->reference.chains) want.insert(c.str());
    for (const auto& [name, info] : committed)
      EXPECT_TRUE(want.count(name)) << "committed snapshot of no layer of the image: " << name;
    for (size_t i = 0; i < env_->reference.chains.size(); ++i) {
      const std::string chain = env_->reference.chains[i].str();
      auto it = committed.find(chain);
      if (it == committed.end()) {
        ADD_FAILURE() << "layer " << i << " not committed: " << chain;
        continue;
      }
      EXPECT_EQ(it->second.parent, i == 0 ? "" : env_->reference.chains[i - 1].str()) << chain;
      if (!layers) continue;
      for (const auto& d : fixtures::DiffTrees(env_->reference.layers[i], LayerTree(*sn, chain)))
        ADD_FAILURE() << "layer " << i << " (" << chain.substr(0, 19) << "): " << d;
    }
    fixtures::Tree rootfs = RootfsOf(*sn, env_->reference.chains.back().str(), g.dir() / "mnt");
    for (const auto& d : fixtures::DiffTrees(env_->reference.rootfs, rootfs))
      ADD_FAILURE() << "rootfs: " << d;
    if (layers) {
      auto names = g.ImageNames();
      EXPECT_NE(std::find(names.begin(), names.end(), env_->ref), names.end())
          << "`gantry images` does not list " << env_->ref;
    }
    for (const auto& m : MountsUnder(g.dir())) ADD_FAILURE() << "left mounted: " << m;
    return extract;
  }

  // SIGKILLs `child` (a pull that must still run), clears the proxy's
  // faults and returns the report of the `gantry prune --json` run next
  // (not an object, with a failure, when it did not run).
  static nlohmann::json KillThenPrune(fixtures::Child& child, const Gantry& g) {
    EXPECT_FALSE(child.Exited()) << "the stalled pull ended by itself";
    KillUnlessExited(child);
    EXPECT_TRUE(child.Wait());
    env_->proxy->ClearRules();
    auto r = g.Run({"prune", "--json"});
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return nullptr;
    EXPECT_EQ(r->exit_code, 0) << Describe(*r);
    auto report = nlohmann::json::parse(r->out, nullptr, false);
    EXPECT_TRUE(report.is_object()) << r->out;
    return report;
  }

  static inline std::unique_ptr<Env> env_;
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<Gantry>> stores_;
};

// ---- kills ------------------------------------------------------------------

enum class Gate { kStart, kRequests, kIngest, kSnapshotDirs };
const char* GateName(Gate g) {
  switch (g) {
    case Gate::kStart:
      return "start";
    case Gate::kRequests:
      return "proxy-requests";
    case Gate::kIngest:
      return "ingest-file";
    case Gate::kSnapshotDirs:
      return "snapshot-dirs";
  }
  return "?";
}

struct KillPoint {
  Gate gate = Gate::kStart;
  int count = 0;          // kRequests, kSnapshotDirs
  milliseconds delay{0};  // after the gate
};

TEST_F(KillTest, KillPullAtRandomPointsThenPullAgain) {
  auto to_ms = [](Clock::duration d) {
    return std::max<uint64_t>(
        20, static_cast<uint64_t>(std::chrono::duration_cast<milliseconds>(d).count()));
  };
  const uint64_t pull_ms = to_ms(env_->pull_time);
  const uint64_t unpack_ms = to_ms(env_->pull_time - env_->unpack_start);
  int killed = 0;
  std::vector<std::set<std::string>> leftovers;
  for (int round = 0; round < kKillRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto g = NewStore();
    ASSERT_TRUE(g);
    KillPoint kp;
    // Every kind of signal gets a quarter of the rounds; within it, where
    // and how long after it are drawn.
    kp.gate = static_cast<Gate>(round % 4);
    switch (kp.gate) {
      case Gate::kStart:
        kp.delay = milliseconds(rng_() % (pull_ms * 6 / 5 + 1));
        break;
      case Gate::kRequests:
        kp.count =
            1 + static_cast<int>(rng_() % static_cast<uint64_t>(std::max(1, env_->requests)));
        kp.delay = milliseconds(rng_() % 20);
        break;
      case Gate::kIngest:
        kp.delay = milliseconds(rng_() % 30);
        break;
      case Gate::kSnapshotDirs:
        kp.count = 1 + static_cast<int>(rng_() % env_->reference.chains.size());
        kp.delay = milliseconds(rng_() % (unpack_ms + 1));
        break;
    }
    env_->proxy->ClearLog();
    const fs::path ingest = g->root() / "content" / "ingest";
    const fs::path snapdirs = g->root() / "snapshots";
    auto t0 = Clock::now();
    auto child = g->Spawn(PullArgs(), g->dir() / "kill.out", g->dir() / "kill.err");
    ASSERT_TRUE(child) << child.error().message;
    auto reached = [&] {
      switch (kp.gate) {
        case Gate::kStart:
          return true;
        case Gate::kRequests:
          return static_cast<int>(env_->proxy->Log().size()) >= kp.count;
        case Gate::kIngest:
          return CountEntries(ingest) > 0;
        case Gate::kSnapshotDirs:
          return CountEntries(snapdirs) >= kp.count;
      }
      return true;
    };
    ASSERT_TRUE(fixtures::WaitUntil([&] { return reached() || child->Exited(); },
                                    std::chrono::seconds(60), milliseconds(1)))
        << "the pull neither progressed nor exited in 60 s";
    if (!child->Exited()) {
      std::this_thread::sleep_for(kp.delay);  // the random kill point
      KillUnlessExited(*child);
    }
    auto t_kill = Clock::now();
    auto status = child->Wait();
    ASSERT_TRUE(status) << status.error().message;
    const bool was_killed = *status == 128 + SIGKILL;
    killed += was_killed ? 1 : 0;
    std::printf(
        "round %2d: gate=%s count=%d delay=%lld ms -> %s at %.0f ms; "
        "store: %d ingest, %d blobs, %d snapshot dirs, %zu requests\n",
        round, GateName(kp.gate), kp.count, static_cast<long long>(kp.delay.count()),
        was_killed ? "killed" : ("exited " + std::to_string(*status)).c_str(), Ms(t_kill - t0),
        CountEntries(ingest), CountEntries(g->root() / "content" / "blobs" / "sha256"),
        CountEntries(snapdirs), env_->proxy->Log().size());
    if (!was_killed) {
      auto err = common::ReadFile(g->dir() / "kill.err");
      EXPECT_EQ(*status, 0) << "the uninterrupted pull failed: " << (err ? *err : "");
    }
    // What the kill left is the store's own business, never a problem. A
    // pull killed before it created the store left none to check (fsck
    // refuses a missing root rather than creating one).
    if (fs::exists(g->root() / "metadata.db")) {
      auto fsck = g->Run({"fsck"});
      ASSERT_TRUE(fsck) << fsck.error().message;
      EXPECT_EQ(fsck->exit_code, 0) << Describe(*fsck) << fsck->out;
    }
    ASSERT_NO_FATAL_FAILURE(pulltest::PullOk(*g, PullFlags()));
    leftovers.push_back(ExpectComplete(*g));
    stores_.push_back(std::move(g));
    if (HasFailure()) break;
  }
  // Most kill points fall inside the pull (a few may land after it ended).
  EXPECT_GE(killed, kKillRounds / 2) << "too few kills landed inside a pull";

  // Prune removes what the kills left and keeps the image; a pull then
  // still works and changes nothing.
  int extract_total = 0;
  for (size_t i = 0; i < stores_.size(); ++i) {
    SCOPED_TRACE("prune of round " + std::to_string(i));
    Gantry& g = *stores_[i];
    auto r = g.Run({"prune", "--json"});
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->exit_code, 0) << Describe(*r);
    auto report = nlohmann::json::parse(r->out, nullptr, false);
    ASSERT_TRUE(report.is_object()) << r->out;
    std::set<std::string> removed;
    for (const auto& s : report["snapshots"]) removed.insert(s.value("key", ""));
    for (const auto& key : leftovers[i])
      EXPECT_TRUE(removed.count(key)) << "prune kept the extract snapshot " << key << "\n"
                                      << r->out;
    extract_total += static_cast<int>(leftovers[i].size());
    EXPECT_TRUE(report["blobs"].empty()) << "prune removed the image's content\n" << r->out;
    EXPECT_EQ(report["ingest"].value("files", -1), 0) << r->out;
    EXPECT_EQ(ExpectComplete(g, /*layers=*/false), std::set<std::string>{})
        << "extract snapshots after prune";
    auto again = g.Run(PullArgs());
    ASSERT_TRUE(again) << again.error().message;
    ASSERT_EQ(again->exit_code, 0) << Describe(*again);
    EXPECT_NE(again->out.find("already unpacked"), std::string::npos) << again->out;
    auto fsck = g.Run({"fsck"});
    ASSERT_TRUE(fsck) << fsck.error().message;
    EXPECT_EQ(fsck->exit_code, 0) << Describe(*fsck) << fsck->out;
  }
  std::printf("%d of %d pulls killed mid-way; prune removed %d extract snapshots\n", killed,
              kKillRounds, extract_total);
}

// A pull killed while it downloads leaves a partial download: prune keeps
// it while it is young (the next pull resumes it) and removes it once it
// is older than a day.
TEST_F(KillTest, KillDuringDownloadPruneKeepsYoungPartials) {
  auto g = NewStore();
  ASSERT_TRUE(g);
  const fs::path ingest = g->root() / "content" / "ingest";
  // The big layer's download stalls after its first MiB, so the kill
  // lands while that partial download is held open.
  const auto& big = pulltest::BiggestLayer(env_->image);
  env_->proxy->AddRule({.kind = fixtures::FaultRule::Kind::kStall,
                        .path_contains = "/blobs/" + big.digest.str(),
                        .bytes = 1 << 20});
  auto child = g->Spawn({"pull", "--plain-http", "--no-unpack", env_->ref}, g->dir() / "out",
                        g->dir() / "err");
  ASSERT_TRUE(child) << child.error().message;
  ASSERT_TRUE(
      fixtures::WaitUntil([&] { return pulltest::IngestSize(g->root(), big.digest) >= (1 << 20); },
                          std::chrono::seconds(30)))
      << "no partial download of " << big.digest.str();
  nlohmann::json report = KillThenPrune(*child, *g);
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["ingest"].value("files", -1), 0) << report.dump();
  EXPECT_EQ(pulltest::IngestSize(g->root(), big.digest), 1 << 20) << "a young partial was removed";

  // Two days old: stale.
  const fs::path partial = ingest / ("sha256-" + big.digest.hex());
  struct timespec old[2];
  old[0].tv_sec = old[1].tv_sec = ::time(nullptr) - 2 * 24 * 3600;
  old[0].tv_nsec = old[1].tv_nsec = 0;
  ASSERT_EQ(::utimensat(AT_FDCWD, partial.c_str(), old, 0), 0);
  auto r = g->Run({"prune", "--json"});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << Describe(*r);
  report = nlohmann::json::parse(r->out, nullptr, false);
  EXPECT_EQ(report["ingest"].value("files", -1), 1) << r->out;
  EXPECT_EQ(pulltest::IngestSize(g->root(), big.digest), -1) << "a stale partial was kept";

  // The store pulls and unpacks the image completely.
  ASSERT_NO_FATAL_FAILURE(pulltest::PullOk(*g, PullFlags()));
  EXPECT_EQ(ExpectComplete(*g), std::set<std::string>{});
  stores_.push_back(std::move(g));
}

// ---- leases of a pull that dies -----------------------------------------------

// The lease rows of a store, and the hold files under leases/ (names).
std::vector<std::string> LeaseRows(const fs::path& root) {
  std::vector<std::string> out;
  if (!fs::exists(root / "metadata.db")) return out;
  auto db = store::MetadataDb::Open(root);
  EXPECT_TRUE(db) << db.error().message;
  if (!db) return out;
  auto leases = db->ListLeases();
  EXPECT_TRUE(leases) << leases.error().message;
  if (leases)
    for (const auto& l : *leases) out.push_back(l.id);
  return out;
}

std::vector<std::string> HoldFiles(const fs::path& root) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(root / "leases", ec), end; !ec && it != end; it.increment(ec))
    out.push_back(it->path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Digests of the blobs `prune --json` reports deleted.
std::set<std::string> PrunedBlobs(const nlohmann::json& report) {
  std::set<std::string> out;
  for (const auto& b : report["blobs"]) out.insert(b.value("digest", ""));
  return out;
}

// A pull SIGKILLed while its biggest layer stalls, after everything else
// was downloaded (and, unpacking, its unpack's lease made): every lease it
// made had a hold file, so the next prune deletes them at once and frees
// the blobs they kept, instead of keeping them for the leases' 24 h.
TEST_F(KillTest, KilledPullsLeasesAndTheirBlobsAreFreedByTheNextPrune) {
  auto g = NewStore();
  ASSERT_TRUE(g);
  const auto& big = pulltest::BiggestLayer(env_->image);
  env_->proxy->AddRule({.kind = fixtures::FaultRule::Kind::kStall,
                        .path_contains = "/blobs/" + big.digest.str(),
                        .bytes = 1 << 20});
  std::set<std::string> others;  // every blob of the image but the stalled layer
  for (const auto& d : pulltest::ImageDigests(env_->image))
    if (d != big.digest) others.insert(d.str());
  auto child = g->Spawn({"pull", "--plain-http", env_->ref}, g->dir() / "out", g->dir() / "err");
  ASSERT_TRUE(child) << child.error().message;
  // The pull's lease and the unpack's; the blobs but the stalled one.
  auto settled = [&] {
    return pulltest::IngestSize(g->root(), big.digest) >= (1 << 20) &&
           CountEntries(g->root() / "content" / "blobs" / "sha256") ==
               static_cast<int>(others.size()) &&
           LeaseRows(g->root()).size() == 2;
  };
  ASSERT_TRUE(fixtures::WaitUntil([&] { return settled() || child->Exited(); },
                                  std::chrono::seconds(60), milliseconds(5)))
      << "the pull never reached its stalled layer with two leases";
  ASSERT_FALSE(child->Exited()) << "the stalled pull ended by itself";
  std::vector<std::string> rows = LeaseRows(g->root());
  std::sort(rows.begin(), rows.end());
  EXPECT_EQ(HoldFiles(g->root()), rows) << "a lease without a hold file";

  nlohmann::json report = KillThenPrune(*child, *g);
  ASSERT_TRUE(report.is_object());
  std::set<std::string> freed_leases(report["expired_leases"].begin(),
                                     report["expired_leases"].end());
  EXPECT_EQ(freed_leases, std::set<std::string>(rows.begin(), rows.end())) << report.dump();
  EXPECT_EQ(PrunedBlobs(report), others) << "prune kept what the dead pull's lease held\n"
                                         << report.dump();
  EXPECT_TRUE(LeaseRows(g->root()).empty());
  EXPECT_TRUE(HoldFiles(g->root()).empty());
  EXPECT_EQ(pulltest::IngestSize(g->root(), big.digest), 1 << 20) << "a young partial went";
  auto fsck = g->Run({"fsck"});
  ASSERT_TRUE(fsck) << fsck.error().message;
  EXPECT_EQ(fsck->exit_code, 0) << Describe(*fsck) << fsck->out;
  stores_.push_back(std::move(g));
}

// `gantry pull --json REF | head -c 300`: the reader goes away while the
// pull still writes progress (its biggest layer trickles in). The pull must
// not die in the middle of a write with its leases behind it: it stops as
// if interrupted, deletes its leases (keeping any partial download for the
// next pull), and exits 141 as a writer SIGPIPE killed would.
TEST_F(KillTest, PullWhoseOutputReaderWentAwayLeavesNoLease) {
  REQUIRE_TOOLS("bash", "head");
  auto g = NewStore();
  ASSERT_TRUE(g);
  const auto& big = pulltest::BiggestLayer(env_->image);
  env_->proxy->AddRule({.kind = fixtures::FaultRule::Kind::kTrickle,
                        .path_contains = "/blobs/" + big.digest.str(),
                        .interval = milliseconds(20)});
  std::vector<std::string> argv = {"bash", "-c", "set -o pipefail; \"$@\" | head -c 300 >/dev/null",
                                   "pull"};
  for (const auto& a : g->Argv({"pull", "--plain-http", "--json", env_->ref})) argv.push_back(a);
  auto r = fixtures::RunCommand(
      argv,
      {.env = g->Env(), .cwd = g->dir(), .stdin_data = {}, .timeout = std::chrono::seconds(60)});
  env_->proxy->ClearRules();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 128 + SIGPIPE) << r->Describe(argv);
  EXPECT_NE(r->err.find("broken pipe"), std::string::npos) << r->err;
  EXPECT_EQ(LeaseRows(g->root()), std::vector<std::string>{}) << "the pull left its leases";
  EXPECT_EQ(HoldFiles(g->root()), std::vector<std::string>{});

  auto p = g->Run({"prune", "--json"});
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_EQ(p->exit_code, 0) << Describe(*p);
  EXPECT_TRUE(LeaseRows(g->root()).empty());
  // Nothing keeps what the pull wrote: its blobs are gone, and a pull now
  // completes.
  EXPECT_EQ(CountEntries(g->root() / "content" / "blobs" / "sha256"), 0) << p->out;
  ASSERT_NO_FATAL_FAILURE(pulltest::PullOk(*g, PullFlags()));
  EXPECT_EQ(ExpectComplete(*g), std::set<std::string>{});
  stores_.push_back(std::move(g));
}

// ---- prune racing pulls -----------------------------------------------------

TEST_F(KillTest, PruneRacingPullNeverBreaksIt) {
  int prunes_total = 0;
  for (int round = 0; round < kPruneRaceRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto g = NewStore();
    ASSERT_TRUE(g);
    // Prunes from two threads, the pull starting among them.
    std::atomic<bool> stop{false};
    std::atomic<int> prunes{0};
    std::vector<std::string> failures;
    std::mutex mu;
    auto pruner = [&] {
      while (!stop) {
        auto r = g->Run({"prune"});
        std::lock_guard lk(mu);
        if (!r)
          failures.push_back(r.error().message);
        else if (r->exit_code != 0)
          failures.push_back(Describe(*r));
        else
          ++prunes;
      }
    };
    std::thread a(pruner);
    std::this_thread::sleep_for(milliseconds(rng_() % 50));  // a random head start for prune
    auto child = g->Spawn(PullArgs(), g->dir() / "pull.out", g->dir() / "pull.err");
    std::thread b(pruner);
    int status = -1;
    if (child) {
      auto s = child->Wait();
      if (s) status = *s;
    }
    stop = true;
    a.join();
    b.join();
    ASSERT_TRUE(child) << child.error().message;
    auto err = common::ReadFile(g->dir() / "pull.err");
    ASSERT_EQ(status, 0) << "the pull failed while prunes ran: " << (err ? *err : "");
    for (const auto& f : failures) ADD_FAILURE() << "prune failed: " << f;
    prunes_total += prunes;
    // A last prune after the pull must keep everything too.
    auto r = g->Run({"prune", "--json"});
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->exit_code, 0) << Describe(*r);
    auto report = nlohmann::json::parse(r->out, nullptr, false);
    EXPECT_TRUE(report["blobs"].empty()) << r->out;
    EXPECT_TRUE(report["snapshots"].empty()) << r->out;
    pulltest::ExpectBlobsInStore(g->root(), pulltest::ImageDigests(env_->image));
    EXPECT_EQ(ExpectComplete(*g), std::set<std::string>{});
    stores_.push_back(std::move(g));
  }
  std::printf("%d prunes ran alongside %d pulls\n", prunes_total, kPruneRaceRounds);
}

}  // namespace
}  // namespace killtest
