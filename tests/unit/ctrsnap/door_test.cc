// The snapshotter door (ctrsnap/door.h) over a real native snapshotter and
// metadata.db in a temporary root, called the way containerd v1.6's
// metadata layer and unpacker call a proxy snapshotter: keys
// "<namespace>/<n>/<key>", the snapshot.ref label, the remote-snapshot
// List filter. containerd itself is in tests/integration/ctrsnap.

#include "ctrsnap/door.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/fd.h"
#include "ctrsnap/names.h"

namespace ctrsnap {
namespace {

namespace fs = std::filesystem;
using common::Errc;
using snapshot::SnapshotKind;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

const std::string kRef(kLabelSnapshotRef);
const std::string kC1 = "sha256:" + std::string(64, '1');
const std::string kC2 = "sha256:" + std::string(64, '2');
const std::string kC3 = "sha256:" + std::string(64, '3');

std::string RefFilter(const std::string& chain, const std::string& parent) {
  return R"(labels."containerd.io/snapshot.ref"==)" + chain + R"(,parent==")" + parent + "\"";
}

class CtrsnapDoor : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("gantry-ctrsnap");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    auto db = store::MetadataDb::Open(root());
    ASSERT_TRUE(db) << db.error().message;
    db_ = std::make_unique<store::MetadataDb>(std::move(*db));
    auto sn = snapshot::Open(root(), {.kind = snapshot::Kind::kNative});
    ASSERT_TRUE(sn) << sn.error().message;
    sn_ = std::move(*sn);
    door_ = std::make_unique<Door>(root(), *sn_, *db_);
  }

  fs::path root() const { return dir_.path() / "root"; }

  // A layer as gantry's own unpack leaves it: committed under its chainID.
  void GantryLayer(const std::string& chain, const std::string& parent) {
    ASSERT_TRUE(sn_->Prepare("extract-" + chain.substr(7, 8), parent));
    ASSERT_TRUE(sn_->Commit(chain, "extract-" + chain.substr(7, 8)));
  }

  // What containerd's unpacker does for a layer gantry lacks: Prepare,
  // apply (a file here), Commit under "<ns>/<n>/<chain>".
  void ContainerdLayer(const std::string& chain, const std::string& parent, int seq) {
    const std::string key =
        "default/" + std::to_string(seq) + "/extract-" + std::to_string(seq) + " " + chain;
    auto m = door_->Prepare(key, parent, {{kRef, chain}});
    ASSERT_TRUE(m) << m.error().message;
    auto dir = sn_->FsDir(key);
    ASSERT_TRUE(dir) << dir.error().message;
    std::ofstream(*dir / ("file-" + std::to_string(seq))) << chain;
    auto c =
        door_->Commit("default/" + std::to_string(seq + 1) + "/" + chain, key, {{kRef, chain}});
    ASSERT_TRUE(c) << c.error().message;
  }

  std::vector<Info> List(const std::vector<std::string>& filters) {
    std::vector<Info> out;
    auto st = door_->List(filters, [&](const Info& i) -> common::Status {
      out.push_back(i);
      return {};
    });
    EXPECT_TRUE(st) << st.error().message;
    return out;
  }

  std::vector<std::string> Names(const std::vector<Info>& infos) {
    std::vector<std::string> out;
    for (const auto& i : infos) out.push_back(i.name);
    return out;
  }

  common::TempDir dir_;
  std::unique_ptr<store::MetadataDb> db_;
  std::unique_ptr<snapshot::Snapshotter> sn_;
  std::unique_ptr<Door> door_;
};

TEST_F(CtrsnapDoor, LayersContainerdUnpacksBecomeGantryChainsUnderContainerdsNames) {
  ASSERT_NO_FATAL_FAILURE(ContainerdLayer(kC1, "", 1));
  ASSERT_NO_FATAL_FAILURE(ContainerdLayer(kC2, "default/2/" + kC1, 3));

  // gantry has them under the bare chainIDs, chained.
  auto g2 = sn_->Stat(kC2);
  ASSERT_TRUE(g2) << g2.error().message;
  EXPECT_EQ(g2->kind, SnapshotKind::kCommitted);
  EXPECT_EQ(g2->parent, kC1);
  // containerd sees its own names and parents.
  auto c2 = door_->Stat("default/4/" + kC2);
  ASSERT_TRUE(c2) << c2.error().message;
  EXPECT_EQ(c2->kind, SnapshotKind::kCommitted);
  EXPECT_EQ(c2->parent, "default/2/" + kC1);
  EXPECT_EQ(c2->labels.at(kRef), kC2);
  // The extraction keys are gone.
  auto gone = door_->Stat("default/1/extract-1 " + kC1);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::kNotFound);

  // A container on the top layer: an active gantry snapshot whose mounts
  // hold both layers.
  auto m = door_->Prepare("default/5/ctr1", "default/4/" + kC2, {});
  ASSERT_TRUE(m) << m.error().message;
  ASSERT_EQ(m->size(), 1u);
  auto mounts = door_->Mounts("default/5/ctr1");
  ASSERT_TRUE(mounts) << mounts.error().message;
  auto fsdir = sn_->FsDir("default/5/ctr1");
  ASSERT_TRUE(fsdir);
  EXPECT_TRUE(fs::exists(*fsdir / "file-1") && fs::exists(*fsdir / "file-3"))
      << "the native snapshot copies its parents";
  EXPECT_THAT(Names(List({})),
              ElementsAre("default/2/" + kC1, "default/4/" + kC2, "default/5/ctr1"));
  EXPECT_THAT(Names(List({"kind==active"})), ElementsAre("default/5/ctr1"));
}

TEST_F(CtrsnapDoor, RemoteSnapshotAdoptsGantrysChainsWithoutCreatingAnything) {
  ASSERT_NO_FATAL_FAILURE(GantryLayer(kC1, ""));
  ASSERT_NO_FATAL_FAILURE(GantryLayer(kC2, kC1));
  const size_t before = sn_->List()->size();

  // Layer 1: the unpacker's Prepare answers AlreadyExists...
  auto p1 = door_->Prepare("default/1/extract-1 " + kC1, "", {{kRef, kC1}});
  ASSERT_FALSE(p1);
  EXPECT_EQ(p1.error().code, Errc::kAlreadyExists) << p1.error().message;
  // ...and containerd's Walk finds the chain to adopt, first layer parent "".
  auto found = List({RefFilter(kC1, "")});
  ASSERT_THAT(Names(found), ElementsAre(kC1));
  EXPECT_EQ(found[0].kind, SnapshotKind::kCommitted);
  EXPECT_EQ(found[0].parent, "");
  EXPECT_EQ(found[0].labels.at(kRef), kC1);

  // Layer 2 on the adopted name.
  auto p2 = door_->Prepare("default/2/extract-2 " + kC2, kC1, {{kRef, kC2}});
  ASSERT_FALSE(p2);
  EXPECT_EQ(p2.error().code, Errc::kAlreadyExists);
  found = List({RefFilter(kC2, kC1)});
  ASSERT_THAT(Names(found), ElementsAre(kC2));
  EXPECT_EQ(found[0].parent, kC1);
  EXPECT_TRUE(List({RefFilter(kC2, "")}).empty()) << "the parent must match";

  EXPECT_EQ(sn_->List()->size(), before) << "no copy, no alias snapshot";
  auto st = door_->Stat(kC2);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->parent, kC1);
  // Both are containerd's now: its unfiltered walk (its GC) sees them.
  EXPECT_THAT(Names(List({})), ElementsAre(kC1, kC2));
}

TEST_F(CtrsnapDoor, RemoteSnapshotOnAParentContainerdCommittedItselfShowsThatName) {
  ASSERT_NO_FATAL_FAILURE(ContainerdLayer(kC1, "", 1));  // gantry gets kC1 from containerd
  ASSERT_NO_FATAL_FAILURE(GantryLayer(kC2, kC1));        // a gantry pull adds kC2 on it
  const std::string parent = "default/2/" + kC1;
  auto p = door_->Prepare("default/9/extract-9 " + kC2, parent, {{kRef, kC2}});
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, Errc::kAlreadyExists);
  auto found = List({RefFilter(kC2, parent)});
  ASSERT_THAT(Names(found), ElementsAre(kC2));
  EXPECT_EQ(found[0].parent, parent) << "containerd checks the parent it knows";
}

TEST_F(CtrsnapDoor, HalfUnpackedOrOtherParentChainsAreNotAdopted) {
  ASSERT_TRUE(sn_->Prepare("extract-half", ""));  // gantry's unpack of kC3, not committed
  auto p = door_->Prepare("default/1/extract-1 " + kC3, "", {{kRef, kC3}});
  ASSERT_TRUE(p) << p.error().message;  // prepared normally: containerd applies it

  ASSERT_NO_FATAL_FAILURE(GantryLayer(kC1, ""));
  ASSERT_NO_FATAL_FAILURE(GantryLayer(kC2, kC1));
  // kC2 asked for on no parent: gantry's kC2 sits on kC1, so it is not it.
  auto q = door_->Prepare("default/2/extract-2 " + kC2, "", {{kRef, kC2}});
  ASSERT_TRUE(q) << q.error().message;
}

TEST_F(CtrsnapDoor, CommitOfAChainGantryGotMeanwhileDropsTheDuplicate) {
  const std::string key = "default/1/extract-1 " + kC1;
  ASSERT_TRUE(door_->Prepare(key, "", {{kRef, kC1}}));
  ASSERT_NO_FATAL_FAILURE(GantryLayer(kC1, ""));  // a gantry pull finished first
  auto c = door_->Commit("default/2/" + kC1, key, {{kRef, kC1}});
  ASSERT_TRUE(c) << c.error().message;
  auto st = door_->Stat("default/2/" + kC1);
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(st->kind, SnapshotKind::kCommitted);
  EXPECT_FALSE(sn_->Stat(key)) << "containerd's copy is removed";
}

TEST_F(CtrsnapDoor, RemoveDropsTheHoldAndOnlyContainerdsOwnSnapshots) {
  ASSERT_NO_FATAL_FAILURE(ContainerdLayer(kC1, "", 1));
  ASSERT_TRUE(door_->Prepare("default/5/ctr1", "default/2/" + kC1, {}));

  auto busy = door_->Remove("default/2/" + kC1);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, Errc::kFailedPrecondition) << busy.error().message;

  ASSERT_TRUE(door_->Remove("default/5/ctr1"));
  EXPECT_FALSE(sn_->Stat("default/5/ctr1")) << "an active snapshot goes with containerd's hold";
  ASSERT_TRUE(door_->Remove("default/2/" + kC1));
  EXPECT_TRUE(sn_->Stat(kC1)) << "a chain stays for gantry's own GC";
  EXPECT_THAT(List({}), IsEmpty());
  EXPECT_THAT(*db_->ListContainerdSnapshots(), IsEmpty());

  auto unknown = door_->Remove("default/9/nothing");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::kNotFound);
}

TEST_F(CtrsnapDoor, GantrysOwnSnapshotsAreNotListedSoContainerdNeverRemovesThem) {
  ASSERT_NO_FATAL_FAILURE(GantryLayer(kC1, ""));
  ASSERT_TRUE(sn_->Prepare("bundle-1", kC1));
  EXPECT_THAT(List({}), IsEmpty());
  auto r = door_->Remove(kC1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kNotFound);
  EXPECT_TRUE(sn_->Stat(kC1));
}

TEST_F(CtrsnapDoor, BadInputGetsContainerdsErrorsAndLeavesNothing) {
  auto noparent = door_->Prepare("default/1/a", "default/0/missing", {});
  ASSERT_FALSE(noparent);
  EXPECT_EQ(noparent.error().code, Errc::kNotFound) << noparent.error().message;

  auto big = door_->Prepare("default/2/b", "", {{"k", std::string(4096, 'v')}});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, Errc::kInvalidArgument) << big.error().message;

  ASSERT_TRUE(door_->View("default/3/v", "", {}));
  auto commit_view = door_->Commit("default/4/x", "default/3/v", {});
  ASSERT_FALSE(commit_view);
  EXPECT_EQ(commit_view.error().code, Errc::kFailedPrecondition) << commit_view.error().message;

  auto commit_missing = door_->Commit("default/5/x", "default/0/nothing", {});
  ASSERT_FALSE(commit_missing);
  EXPECT_EQ(commit_missing.error().code, Errc::kNotFound);

  ASSERT_TRUE(door_->Prepare("default/6/a", "", {}));
  auto again = door_->Prepare("default/6/a", "", {});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kAlreadyExists);

  auto bad_filter = door_->List({"name=="}, [](const Info&) -> common::Status { return {}; });
  ASSERT_FALSE(bad_filter);
  EXPECT_EQ(bad_filter.error().code, Errc::kInvalidArgument);

  EXPECT_THAT(Names(List({})), ElementsAre("default/3/v", "default/6/a"));
  EXPECT_EQ(sn_->List()->size(), 2u) << "nothing but the two snapshots asked for";
}

TEST_F(CtrsnapDoor, UpdateChangesContainerdsLabelsOnly) {
  ASSERT_TRUE(door_->Prepare("default/1/a", "", {{"x", "1"}, {"y", "2"}}));
  Info in{.name = "default/1/a", .labels = {{"x", "10"}, {"z", "3"}}};
  auto one = door_->Update(in, {"labels.x", "labels.y"});
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->labels, (std::map<std::string, std::string>{{"x", "10"}}));
  auto all = door_->Update(in, {});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->labels, in.labels);
  auto other = door_->Update(in, {"parent"});
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(door_->Stat("default/1/a")->labels, in.labels);
  auto usage = door_->Usage("default/1/a");
  ASSERT_TRUE(usage) << usage.error().message;
  EXPECT_TRUE(door_->Cleanup());
}

}  // namespace
}  // namespace ctrsnap
