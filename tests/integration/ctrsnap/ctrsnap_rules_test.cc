// The snapshotter door's rules, with the real peers (ctrsnap_fixture.h):
//  - CtrsnapTree: a layer containerd 1.6 applies through the door's mounts
//    is, file for file, what containerd's own overlayfs snapshotter makes
//    of it; gantry then uses those layers as its own.
//  - CtrsnapCrash: `gantry serve` SIGKILLed while containerd pulls through
//    it, at the Prepare of each of several layers and wherever an unpack
//    in full flight is; restarted on the same socket, containerd's retried
//    pull and `ctr run` work, fsck is clean, and once containerd lets go
//    the store is empty again.
//  - CtrsnapBadInput: containerd's error codes for bad calls, sent to the
//    door's gRPC service directly (containerd's metadata layer would catch
//    some of them first), and no adoption of a chain gantry has only
//    half unpacked.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <map>
#include <set>
#include <sstream>

#include "criimage/containerd_snapshots.grpc.pb.h"
#include "fixtures/tree_walk.h"
#include "integration/ctrsnap/ctrsnap_fixture.h"

namespace ctrsnaptest {
namespace {

using namespace std::chrono_literals;
namespace snapv1 = containerd::services::snapshots::v1;

constexpr char kRefLabel[] = "containerd.io/snapshot.ref";

// The groups of paths (relative to `root`) that are one inode, for inodes
// with more than one name.
std::set<std::set<std::string>> HardlinkGroups(const fs::path& root) {
  std::map<ino_t, std::set<std::string>> by_inode;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || S_ISDIR(st.st_mode) || st.st_nlink < 2) continue;
    by_inode[st.st_ino].insert(fs::relative(it->path(), root).string());
  }
  EXPECT_FALSE(ec) << root << ": " << ec.message();
  std::set<std::set<std::string>> out;
  for (auto& [ino, names] : by_inode) out.insert(std::move(names));
  return out;
}

// The `lowerdir=` directories of the first overlay mount in `ctr snapshots
// … --mounts` JSON output (Go's field names: "Type", "Options"), bottom
// first.
std::vector<fs::path> LowerDirsBottomFirst(const std::string& mounts_json) {
  auto j = nlohmann::json::parse(mounts_json, nullptr, false);
  std::vector<fs::path> dirs;
  if (!j.is_array()) return dirs;
  for (const auto& m : j) {
    for (const auto& o : m.value("Options", nlohmann::json::array())) {
      std::string opt = o.get<std::string>();
      if (!opt.starts_with("lowerdir=")) continue;
      std::string rest = opt.substr(9);
      for (size_t pos = 0; pos <= rest.size();) {
        size_t colon = rest.find(':', pos);
        if (colon == std::string::npos) colon = rest.size();
        dirs.insert(dirs.begin(), rest.substr(pos, colon - pos));  // top first in the option
        pos = colon + 1;
      }
      return dirs;
    }
  }
  return dirs;
}

// Unmounts `dir` when the test leaves early.
struct DetachOnExit {
  fs::path dir;
  ~DetachOnExit() {
    if (!dir.empty()) (void)::umount2(dir.c_str(), MNT_DETACH);
  }
};

class CtrsnapTree : public ContainerdFixture {};

TEST_F(CtrsnapTree, LayersContainerdAppliesThroughTheDoorEqualItsOwnOverlayfsOnes) {
  auto pull = Ctr({"images", "pull", "--plain-http", "--snapshotter", "gantry", ref_});
  ASSERT_EQ(pull.exit_code, 0) << pull.out << pull.err << Logs();
  auto own = Ctr({"images", "pull", "--plain-http", "--snapshotter", "overlayfs", ref_});
  ASSERT_EQ(own.exit_code, 0) << own.out << own.err << Logs();

  // containerd's own layer directories, from a view of the top chain.
  auto view = Ctr(
      {"snapshots", "--snapshotter", "overlayfs", "view", "--mounts", "tree-view", chains_.back()});
  ASSERT_EQ(view.exit_code, 0) << view.out << view.err;
  std::vector<fs::path> theirs = LowerDirsBottomFirst(view.out);
  ASSERT_EQ(theirs.size(), chains_.size()) << view.out;

  fixtures::WalkOptions raw{.skip_mechanics_xattrs = false};  // keep trusted.overlay.opaque
  for (size_t i = 0; i < chains_.size(); ++i) {
    SCOPED_TRACE("layer " + std::to_string(i + 1) + " " + chains_[i]);
    fs::path ours = pulltest::CommittedSnapshotDir(*gantry_, chains_[i]);
    ASSERT_FALSE(ours.empty());
    auto want = fixtures::WalkTree(theirs[i], raw);
    ASSERT_TRUE(want) << want.error().message;
    auto got = fixtures::WalkTree(ours, raw);
    ASSERT_TRUE(got) << got.error().message;
    for (const auto& d : fixtures::DiffTrees(*want, *got)) ADD_FAILURE() << d;
    EXPECT_EQ(HardlinkGroups(theirs[i]), HardlinkGroups(ours));
    if (i == 1) {
      // The comparison saw what the layer is about: a whiteout, an opaque
      // directory and hardlinks, as overlayfs stores them.
      ASSERT_TRUE(got->count("etc/old/a")) << ours;
      EXPECT_EQ(got->at("etc/old/a").type, "char");
      EXPECT_EQ(got->at("etc/old/a").rdev, "0:0");
      ASSERT_TRUE(got->count("var/cache"));
      EXPECT_EQ(got->at("var/cache").xattrs.count("trusted.overlay.opaque"), 1u);
      EXPECT_EQ(HardlinkGroups(ours).size(), 2u);
    }
    if (i == 0) {
      ASSERT_TRUE(got->count("home/app"));
      EXPECT_EQ(got->at("home/app").uid, 1000u);
      ASSERT_TRUE(got->count("usr/bin/cap-test"));
      EXPECT_EQ(got->at("usr/bin/cap-test").xattrs.count("security.capability"), 1u);
    }
    if (i == 3) {
      ASSERT_TRUE(got->count("dev/null-copy"));
      EXPECT_EQ(got->at("dev/null-copy").rdev, "1:3");
    }
  }
  (void)Ctr({"snapshots", "--snapshotter", "overlayfs", "rm", "tree-view"});

  // gantry lists the chains as its own, and its pull of the image unpacks
  // nothing: no layer-unpack event, no new snapshot.
  auto kinds = pulltest::SnapshotKinds(*gantry_);
  for (const auto& c : chains_) EXPECT_EQ(kinds[c], "committed") << c;
  const std::string gref = reg_->host() + "/fixture/app:v1";
  auto gp = Gantry({"pull", "--json", gref});
  ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;
  for (const auto& e : pulltest::JsonEvents(gp.out))
    EXPECT_NE(e.value("event", ""), "layer-unpack") << e.dump();
  EXPECT_EQ(pulltest::SnapshotKinds(*gantry_), kinds);

  // gantry's own users of an image: a mount and a bundle.
  fs::path mnt = gantry_->dir() / "mnt";
  fs::create_directories(mnt);
  auto m = Gantry({"mount", gref, mnt.string()});
  ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
  {
    DetachOnExit guard{mnt};
    EXPECT_EQ(ReadText(mnt / "hello.txt"), "hello from gantry\n");
    EXPECT_FALSE(fs::exists(mnt / "etc/old/a"));
    EXPECT_TRUE(fs::exists(mnt / "var/cache/new"));
    EXPECT_FALSE(fs::exists(mnt / "var/cache/one"));
    auto u = Gantry({"umount", mnt.string()});
    EXPECT_EQ(u.exit_code, 0) << u.out << u.err;
    if (u.exit_code == 0) guard.dir.clear();
  }
  fs::path bundle = gantry_->dir() / "bundle";
  auto b = Gantry({"bundle", gref, bundle.string()});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  {
    DetachOnExit guard{bundle / "rootfs"};
    EXPECT_TRUE(fs::exists(bundle / "config.json"));
    EXPECT_EQ(ReadText(bundle / "rootfs/hello.txt"), "hello from gantry\n");
    auto rm = Gantry({"bundle", "rm", bundle.string()});
    EXPECT_EQ(rm.exit_code, 0) << rm.out << rm.err;
    if (rm.exit_code == 0) guard.dir.clear();
  }
  auto fsck = Gantry({"fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;
}

class CtrsnapCrash : public ContainerdFixture {
 protected:
  // containerd lets go of everything (image, leases: a killed client's
  // lease would hold its snapshots for a day), its GC removes its names
  // through the door, and gantry's prune frees the chains.
  // `orphans_allowed`: a kill at a random point may fall between a
  // Prepare's two steps and leave an active snapshot under a containerd
  // key that no name holds (docs/containerd.md); it is removed with
  // `gantry snapshot rm`, as the docs say, before the prune.
  void ForgetEverything(bool orphans_allowed) {
    (void)Ctr({"images", "rm", "--sync", ref_});
    auto leases = Ctr({"leases", "ls", "-q"});
    std::istringstream in(leases.out);
    for (std::string id; std::getline(in, id);)
      if (!id.empty()) (void)Ctr({"leases", "rm", "--sync", id});
    ASSERT_TRUE(fixtures::WaitUntil([&] { return HeldCount() == 0; }, 30s, 100ms))
        << Df().dump() << Logs();
    for (const auto& [key, kind] : pulltest::SnapshotKinds(*gantry_)) {
      if (kind != "active" || !orphans_allowed) continue;
      auto rm = Gantry({"snapshot", "rm", key});
      EXPECT_EQ(rm.exit_code, 0) << rm.out << rm.err;
    }
    auto prune = Gantry({"prune"});
    ASSERT_EQ(prune.exit_code, 0) << prune.out << prune.err;
    EXPECT_TRUE(pulltest::SnapshotKinds(*gantry_).empty()) << Df().dump();
  }

  // Retries containerd's pull until it succeeds (containerd reconnects to
  // the restarted door within a few seconds), then runs the image and
  // checks the store.
  void RetriedPullWorks(const std::string& run_id) {
    fixtures::CommandResult rp;
    bool pulled = fixtures::WaitUntil(
        [&] {
          rp = CtrRemote({"images", "rpull", "--plain-http", "--snapshotter", "gantry", ref_});
          return rp.exit_code == 0;
        },
        60s, 200ms);
    ASSERT_TRUE(pulled) << rp.out << rp.err << Logs();
    ASSERT_NO_FATAL_FAILURE(RunPrints(run_id));
    std::set<std::string> committed, held;
    Snapshots(&committed, &held);
    for (const auto& c : chains_) EXPECT_TRUE(held.count(c)) << c << Df().dump();
    auto fsck = Gantry({"fsck"});
    EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;
  }

  fixtures::Child StartPull(const std::string& log_name) {
    fixtures::SpawnOptions so;
    so.argv = ToolArgv("ctr-remote",
                       {"images", "rpull", "--plain-http", "--snapshotter", "gantry", ref_});
    so.stdout_path = so.stderr_path = dir_.path() / log_name;
    auto client = fixtures::Child::Spawn(so);
    EXPECT_TRUE(client) << client.error().message;
    return client ? std::move(*client) : fixtures::Child();
  }
};

TEST_F(CtrsnapCrash, ServeKilledAtAPrepareLeavesNothingContainerdOrFsckTripsOn) {
  // Layer k's blob stalls: containerd's unpacker has committed layers
  // below k and prepared layer k, and waits for its bytes. gantry serve
  // dies there; the client too (its pull waits on a stalled download).
  for (size_t k : {size_t{1}, size_t{3}}) {
    SCOPED_TRACE("killed at the prepare of layer " + std::to_string(k + 1));
    proxy_->AddRule({.kind = fixtures::FaultRule::Kind::kStall,
                     .path_contains = "/blobs/" + img_.layers[k].digest.str()});
    fixtures::Child client = StartPull("rpull" + std::to_string(k) + ".log");
    ASSERT_TRUE(client.valid());
    bool at_point = fixtures::WaitUntil(
        [&] {
          auto kinds = pulltest::SnapshotKinds(*gantry_);
          for (size_t i = 0; i < k; ++i)
            if (kinds[chains_[i]] != "committed") return false;
          for (const auto& [key, kind] : kinds)
            if (kind == "active" && key.find("extract") != std::string::npos) return true;
          return false;
        },
        30s, 20ms);
    ASSERT_TRUE(at_point) << Logs();
    ASSERT_NO_FATAL_FAILURE(KillServe());
    ASSERT_EQ(::kill(client.pid(), SIGKILL), 0);
    (void)client.Wait();
    ASSERT_NO_FATAL_FAILURE(RetriedPullWorks("crash" + std::to_string(k)));
    ASSERT_NO_FATAL_FAILURE(ForgetEverything(/*orphans_allowed=*/false));
  }
}

TEST_F(CtrsnapCrash, ServeKilledWhileContainerdUnpacksLeavesNothingContainerdOrFsckTripsOn) {
  // No stall: the kill lands wherever the unpack is when gantry first
  // shows one of its snapshots (a Prepare, an apply, a Commit).
  for (int round = 0; round < 1; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    fixtures::Child client = StartPull("free" + std::to_string(round) + ".log");
    ASSERT_TRUE(client.valid());
    bool started = fixtures::WaitUntil(
        [&] { return !pulltest::SnapshotKinds(*gantry_).empty() || client.Exited(); }, 30s,
        round == 0 ? 1ms : 10ms);
    ASSERT_TRUE(started) << Logs();
    ASSERT_NO_FATAL_FAILURE(KillServe());
    auto st = client.WaitFor(std::chrono::steady_clock::now() + 60s);
    ASSERT_TRUE(st && *st) << "containerd's pull did not end:" << Logs();
    ASSERT_NO_FATAL_FAILURE(RetriedPullWorks("free" + std::to_string(round)));
    ASSERT_NO_FATAL_FAILURE(ForgetEverything(/*orphans_allowed=*/true));
  }
}

class CtrsnapBadInput : public ContainerdFixture {
 protected:
  void SetUp() override {
    ContainerdFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    channel_ =
        grpc::CreateChannel("unix:" + snap_socket_.string(), grpc::InsecureChannelCredentials());
    stub_ = snapv1::Snapshots::NewStub(channel_);
  }

  grpc::Status Prepare(const std::string& key, const std::string& parent,
                       const std::map<std::string, std::string>& labels = {}, bool view = false) {
    auto ctx = critest::Ctx(30);
    if (view) {
      snapv1::ViewSnapshotRequest req;
      req.set_snapshotter("gantry");
      req.set_key(key);
      req.set_parent(parent);
      for (const auto& [k, v] : labels) (*req.mutable_labels())[k] = v;
      snapv1::ViewSnapshotResponse resp;
      return stub_->View(ctx.get(), req, &resp);
    }
    snapv1::PrepareSnapshotRequest req;
    req.set_snapshotter("gantry");
    req.set_key(key);
    req.set_parent(parent);
    for (const auto& [k, v] : labels) (*req.mutable_labels())[k] = v;
    snapv1::PrepareSnapshotResponse resp;
    auto st = stub_->Prepare(ctx.get(), req, &resp);
    if (st.ok()) {
      EXPECT_GT(resp.mounts_size(), 0) << key;
    }
    return st;
  }
  grpc::Status Commit(const std::string& name, const std::string& key,
                      const std::map<std::string, std::string>& labels = {}) {
    auto ctx = critest::Ctx(30);
    snapv1::CommitSnapshotRequest req;
    req.set_snapshotter("gantry");
    req.set_name(name);
    req.set_key(key);
    for (const auto& [k, v] : labels) (*req.mutable_labels())[k] = v;
    google::protobuf::Empty resp;
    return stub_->Commit(ctx.get(), req, &resp);
  }
  grpc::Status Remove(const std::string& key) {
    auto ctx = critest::Ctx(30);
    snapv1::RemoveSnapshotRequest req;
    req.set_snapshotter("gantry");
    req.set_key(key);
    google::protobuf::Empty resp;
    return stub_->Remove(ctx.get(), req, &resp);
  }
  grpc::Status Stat(const std::string& key) {
    auto ctx = critest::Ctx(30);
    snapv1::StatSnapshotRequest req;
    req.set_snapshotter("gantry");
    req.set_key(key);
    snapv1::StatSnapshotResponse resp;
    return stub_->Stat(ctx.get(), req, &resp);
  }
  grpc::Status UpdateLabel(const std::string& name, const std::string& k, const std::string& v) {
    auto ctx = critest::Ctx(30);
    snapv1::UpdateSnapshotRequest req;
    req.set_snapshotter("gantry");
    req.mutable_info()->set_name(name);
    (*req.mutable_info()->mutable_labels())[k] = v;
    req.mutable_update_mask()->add_paths("labels." + k);
    snapv1::UpdateSnapshotResponse resp;
    return stub_->Update(ctx.get(), req, &resp);
  }
  // The names a List with `filter` returns.
  std::vector<std::string> List(const std::string& filter) {
    auto ctx = critest::Ctx(30);
    snapv1::ListSnapshotsRequest req;
    req.set_snapshotter("gantry");
    req.add_filters(filter);
    auto reader = stub_->List(ctx.get(), req);
    std::vector<std::string> names;
    snapv1::ListSnapshotsResponse resp;
    while (reader->Read(&resp))
      for (const auto& i : resp.info()) names.push_back(i.name());
    auto st = reader->Finish();
    EXPECT_TRUE(st.ok()) << st.error_message();
    return names;
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<snapv1::Snapshots::Stub> stub_;
};

#define EXPECT_CODE(call, code)                                                                  \
  do {                                                                                           \
    grpc::Status st_ = (call);                                                                   \
    EXPECT_EQ(st_.error_code(), grpc::StatusCode::code) << #call << ": " << st_.error_message(); \
  } while (0)

TEST_F(CtrsnapBadInput, EachGetsContainerdsCodeAndNothingIsLeaked) {
  const std::string big(4097, 'x');
  auto before = pulltest::SnapshotKinds(*gantry_);
  EXPECT_CODE(Prepare("t/1/a", "t/0/no-such-parent"), NOT_FOUND);
  EXPECT_CODE(Prepare("t/1/a", "", {{"big", big}}), INVALID_ARGUMENT);
  EXPECT_CODE(Prepare("", ""), INVALID_ARGUMENT);
  EXPECT_CODE(Commit("t/2/A", "t/0/no-such-key"), NOT_FOUND);
  EXPECT_EQ(pulltest::SnapshotKinds(*gantry_), before) << "a failed call left a snapshot";
  EXPECT_EQ(HeldCount(), 0);

  // A base, committed; a child of it; a view of it.
  EXPECT_CODE(Prepare("t/1/a", ""), OK);
  EXPECT_CODE(Prepare("t/1/a", ""), ALREADY_EXISTS);
  EXPECT_CODE(Commit("t/2/A", "t/1/a", {{"big", big}}), INVALID_ARGUMENT);
  EXPECT_CODE(Commit("t/2/A", "t/1/a"), OK);
  EXPECT_CODE(Commit("t/3/B", "t/2/A"), FAILED_PRECONDITION);  // committed, not active
  EXPECT_CODE(Prepare("t/4/child", "t/2/A"), OK);
  EXPECT_CODE(Prepare("t/5/on-active", "t/4/child"), INVALID_ARGUMENT);  // as containerd
  EXPECT_CODE(Prepare("t/6/view", "t/2/A", {}, /*view=*/true), OK);
  EXPECT_CODE(Commit("t/7/C", "t/6/view"), FAILED_PRECONDITION);  // a view
  EXPECT_CODE(Remove("t/2/A"), FAILED_PRECONDITION);              // it has children
  EXPECT_CODE(UpdateLabel("t/2/A", "big", big), INVALID_ARGUMENT);
  EXPECT_CODE(UpdateLabel("t/2/A", "small", "1"), OK);
  EXPECT_CODE(Remove("t/0/no-such-key"), NOT_FOUND);

  // A snapshot whose name is a chainID but which is only active is not a
  // chain gantry has: a Prepare naming it in snapshot.ref is prepared.
  const std::string fake = "sha256:" + std::string(64, 'a');
  EXPECT_CODE(Prepare(fake, "t/2/A"), OK);
  EXPECT_CODE(Prepare("t/8/extract", "t/2/A", {{kRefLabel, fake}}), OK);

  // Everything removed, children first: nothing of it stays.
  for (const char* k : {"t/8/extract", fake.c_str(), "t/6/view", "t/4/child", "t/2/A"})
    EXPECT_CODE(Remove(k), OK);
  EXPECT_EQ(HeldCount(), 0) << Df().dump();
  EXPECT_EQ(pulltest::SnapshotKinds(*gantry_), before) << Df().dump();
  auto fsck = Gantry({"fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;
}

TEST_F(CtrsnapBadInput, AChainGantryHasHalfUnpackedIsNotAdopted) {
  // A gantry pull whose top layer stalls: the layers below are applied
  // into extract snapshots (gantry commits an image's layers once all are
  // applied), so no chain of it is committed yet.
  const std::string bottom = chains_.front();
  proxy_->AddRule({.kind = fixtures::FaultRule::Kind::kStall,
                   .path_contains = "/blobs/" + img_.layers.back().digest.str()});
  const std::string gref = proxy_->host() + "/fixture/app:v1";
  const fs::path log = gantry_->dir() / "pull.log";
  auto puller = gantry_->Spawn({"pull", gref}, log, log);
  ASSERT_TRUE(puller) << puller.error().message;
  auto unpacked = [&] {
    const std::string text = ReadText(log);
    int n = 0;
    for (size_t pos = 0; (pos = text.find(": unpacked", pos)) != std::string::npos; ++pos) ++n;
    return n;
  };
  bool half = fixtures::WaitUntil(
      [&] { return unpacked() == static_cast<int>(chains_.size()) - 1; }, 30s, 20ms);
  ASSERT_TRUE(half) << ReadText(log);
  ASSERT_FALSE(puller->Exited()) << ReadText(log);
  auto kinds = pulltest::SnapshotKinds(*gantry_);
  ASSERT_EQ(kinds.count(bottom), 0u) << "committed already: the test shows nothing";

  EXPECT_CODE(Prepare("t/1/extract " + bottom, "", {{kRefLabel, bottom}}), OK);
  EXPECT_CODE(Stat(bottom), NOT_FOUND);
  // Only the snapshot just prepared carries the label; the chain is not shown.
  EXPECT_EQ(List("labels.\"containerd.io/snapshot.ref\"==" + bottom),
            std::vector<std::string>{"t/1/extract " + bottom});
  EXPECT_CODE(Remove("t/1/extract " + bottom), OK);

  // The pull dies (a crash gantry's next pull recovers from); the next one
  // commits the chains, which are then adopted.
  ASSERT_EQ(::kill(puller->pid(), SIGKILL), 0);
  (void)puller->Wait();
  auto gp = Gantry({"pull", gref});
  ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;
  EXPECT_CODE(Prepare("t/2/extract " + bottom, "", {{kRefLabel, bottom}}), ALREADY_EXISTS);
  EXPECT_CODE(Stat(bottom), OK);
  EXPECT_CODE(Remove(bottom), OK);
  EXPECT_EQ(HeldCount(), 0) << Df().dump();
  // The killed pull's extract snapshots are garbage for gantry's prune.
  auto prune = Gantry({"prune"});
  EXPECT_EQ(prune.exit_code, 0) << prune.out << prune.err;
  for (const auto& [key, kind] : pulltest::SnapshotKinds(*gantry_))
    EXPECT_EQ(kind, "committed") << key << " left behind";
  auto fsck = Gantry({"fsck"});
  EXPECT_EQ(fsck.exit_code, 0) << fsck.out << fsck.err;
}

}  // namespace
}  // namespace ctrsnaptest
