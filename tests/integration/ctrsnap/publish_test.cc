// `gantry publish` and `gantry pull --containerd` (ctrpublish/publish.h)
// against the real containerd 1.6 of ContainerdFixture, whose proxy
// snapshotter `gantry` is the door of the fixture's `gantry serve`: the
// image gantry pulled becomes containerd's (content, image records,
// committed chains) and runs under `ctr run --snapshotter gantry` with no
// request of containerd's reaching the registry.

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <thread>

#include "integration/ctrsnap/ctrsnap_fixture.h"
#include "integration/pull/pull_helpers.h"

namespace ctrsnaptest {
namespace {

class CtrPublish : public ContainerdFixture {
 protected:
  std::string Address() const { return "unix://" + containerd_->address(); }

  // `gantry publish REF` into the fixture's namespace.
  fixtures::CommandResult Publish(const std::string& ref,
                                  const std::string& snapshotter = "gantry") {
    return Gantry({"publish", ref, "--containerd", Address(), "--containerd-namespace",
                   containerd_->ns(), "--containerd-snapshotter", snapshotter});
  }

  // Lines of `ctr ARGS` output.
  std::vector<std::string> CtrLines(const std::vector<std::string>& args) {
    auto r = Ctr(args);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    std::vector<std::string> lines;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) lines.push_back(line);
    return lines;
  }

  // The names containerd's CRI plugin records for a pull of ref_.
  std::vector<std::string> ExpectedNames() const {
    std::string repo = ref_.substr(0, ref_.rfind(':'));
    return {img_.config.digest.str(), repo + "@" + img_.manifest.digest.str(), ref_};
  }

  void RemoveImages() {
    for (const std::string& n : ExpectedNames()) (void)Ctr({"images", "rm", "--sync", n});
  }

  // Everything containerd must show after a publication of ref_.
  void ExpectPublished() {
    auto names = CtrLines({"images", "ls", "-q"});
    std::vector<std::string> want = ExpectedNames();
    std::sort(names.begin(), names.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(names, want) << "one record per name, no duplicates";

    bool found = false;
    for (const std::string& l : CtrLines({"images", "ls"})) {
      if (l.rfind(ref_ + " ", 0) != 0) continue;
      found = true;
      EXPECT_NE(l.find(img_.manifest.digest.str()), std::string::npos) << l;
      EXPECT_NE(l.find("io.cri-containerd.image=managed"), std::string::npos) << l;
    }
    EXPECT_TRUE(found);

    std::string content;
    for (const std::string& l : CtrLines({"content", "ls"})) content += l + "\n";
    EXPECT_NE(content.find(img_.manifest.digest.str()), std::string::npos) << content;
    EXPECT_NE(content.find(img_.config.digest.str()), std::string::npos) << content;
    EXPECT_NE(content.find("containerd.io/gc.ref.content.config=" + img_.config.digest.str()),
              std::string::npos)
        << content;
    EXPECT_NE(content.find("containerd.io/gc.ref.snapshot.gantry=" + chains_.back()),
              std::string::npos)
        << content;
    for (const auto& l : img_.layers)
      EXPECT_EQ(("\n" + content).find("\n" + l.digest.str()), std::string::npos)
          << "containerd holds no layer blob: " << content;

    std::string snaps;
    for (const std::string& l : CtrLines({"snapshots", "--snapshotter", "gantry", "ls"}))
      snaps += l + "\n";
    for (const auto& c : chains_) {
      std::string line;
      std::istringstream in(snaps);
      for (std::string s; std::getline(in, s);)
        if (s.rfind(c + " ", 0) == 0) line = s;
      EXPECT_NE(line.find("Committed"), std::string::npos) << c << "\n" << snaps;
    }
  }
};

TEST_F(CtrPublish, PublishedImageRunsWithoutContainerdFetchingAndTwiceIsStillOne) {
  auto gp = Gantry({"pull", ref_});
  ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;
  proxy_->ClearLog();

  // The fixture's namespace does not exist in containerd yet: created.
  auto start = std::chrono::steady_clock::now();
  auto p = Publish(ref_);
  RecordProperty("first_publish_ms", static_cast<int>((std::chrono::steady_clock::now() - start) /
                                                      std::chrono::milliseconds(1)));
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err << Logs();
  EXPECT_EQ(p.out, ref_ + "\n");
  ASSERT_NO_FATAL_FAILURE(ExpectPublished());
  auto ls = Gantry({"images", "--format", "{{.Repository}}:{{.Tag}} {{.Published}}"});
  EXPECT_EQ(ls.out, ref_ + " yes\n") << ls.err;

  // containerd runs it on gantry's chains: nothing unpacked, nothing fetched.
  ASSERT_NO_FATAL_FAILURE(RunPrints("pub1"));
  EXPECT_EQ(proxy_->CountRequests("", "/v2/"), 0) << "containerd went to the registry";

  std::set<std::string> committed, held;
  Snapshots(&committed, &held);
  for (const auto& c : chains_) EXPECT_TRUE(held.count(c)) << c << Df().dump();
  EXPECT_EQ(committed.size(), chains_.size()) << "no copy: " << Df().dump();

  // Again: the records are updated, not duplicated; the blobs and chains
  // are there already.
  start = std::chrono::steady_clock::now();
  p = Publish(ref_);
  RecordProperty("second_publish_ms", static_cast<int>((std::chrono::steady_clock::now() - start) /
                                                       std::chrono::milliseconds(1)));
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err << Logs();
  ASSERT_NO_FATAL_FAILURE(ExpectPublished());
  ASSERT_NO_FATAL_FAILURE(RunPrints("pub2"));
  EXPECT_EQ(proxy_->CountRequests("", "/v2/"), 0);
  RemoveImages();
}

TEST_F(CtrPublish, PullWithContainerdFlagPublishesAndRunsWithTheRegistryStopped) {
  auto gp = Gantry(
      {"pull", "-q", ref_, "--containerd", Address(), "--containerd-namespace", containerd_->ns()});
  ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err << Logs();
  EXPECT_EQ(gp.err.find("warning"), std::string::npos) << gp.err;
  EXPECT_EQ(gp.out, img_.manifest.digest.str() + "\n") << "-q prints only the digest";
  proxy_->ClearLog();
  reg_.reset();  // no registry at all from here
  ASSERT_NO_FATAL_FAILURE(ExpectPublished());
  ASSERT_NO_FATAL_FAILURE(RunPrints("pull1"));
  EXPECT_EQ(proxy_->CountRequests("", "/v2/"), 0);
  RemoveImages();
}

// An image gantry pulled through an index: the index goes to containerd
// too, labelled for the one platform manifest gantry has (the second in
// the index; m.0 as containerd's pull labels it), and the repo@digest
// record names the index.
TEST_F(CtrPublish, AnImagePulledThroughAnIndexIsPublishedWithTheIndex) {
  const fs::path layout = gantry_->dir() / "multi-layout";
  auto arm64 = fixtures::WriteImage(
      layout, fixtures::FixtureImageSpec(fixtures::Compression::kGzip, "arm64", "v8"), "");
  ASSERT_TRUE(arm64) << arm64.error().message;
  auto amd64 = fixtures::WriteImage(layout, fixtures::FixtureImageSpec(), "");
  ASSERT_TRUE(amd64) << amd64.error().message;
  auto index = fixtures::WriteIndex(
      layout, {{*arm64, "linux", "arm64", "v8"}, {*amd64, "linux", "amd64", ""}}, "multi");
  ASSERT_TRUE(index) << index.error().message;
  ASSERT_NO_FATAL_FAILURE(pulltest::PushLayout(*reg_, layout, "multi", "fixture/multi:v1"));
  const std::string multi = proxy_->host() + "/fixture/multi:v1";
  auto gp = Gantry({"pull", "--platform", "linux/amd64", multi});
  ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;

  auto p = Publish(multi);
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err << Logs();
  const std::string by_digest = proxy_->host() + "/fixture/multi@" + index->digest.str();
  auto names = CtrLines({"images", "ls", "-q"});
  std::sort(names.begin(), names.end());
  std::vector<std::string> want = {amd64->config.digest.str(), by_digest, multi};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(names, want);
  std::string content;
  for (const std::string& l : CtrLines({"content", "ls"})) content += l + "\n";
  EXPECT_NE(content.find("containerd.io/gc.ref.content.m.0=" + amd64->manifest.digest.str()),
            std::string::npos)
      << content;
  EXPECT_EQ(content.find(arm64->manifest.digest.str()), std::string::npos) << content;
  proxy_->ClearLog();
  auto r = Ctr({"run", "--rm", "--snapshotter", "gantry", multi, "multi1", "sh", "-c",
                "echo hello-$((6*7))"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << Logs();
  EXPECT_EQ(r.out, "hello-42\n") << r.err;
  EXPECT_EQ(proxy_->CountRequests("", "/v2/"), 0) << "containerd went to the registry";
  for (const std::string& n : want) (void)Ctr({"images", "rm", "--sync", n});
}

// Two publications of one image at once (two pulls with --containerd on
// a node): both succeed, whoever writes a blob first, and containerd ends
// up with one record per name.
TEST_F(CtrPublish, ConcurrentPublicationsOfOneImageBothSucceed) {
  auto gp = Gantry({"pull", ref_});
  ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    fixtures::CommandResult a, b;
    std::thread ta([&] { a = Publish(ref_); });
    std::thread tb([&] { b = Publish(ref_); });
    ta.join();
    tb.join();
    EXPECT_EQ(a.exit_code, 0) << a.out << a.err;
    EXPECT_EQ(b.exit_code, 0) << b.out << b.err;
    ASSERT_NO_FATAL_FAILURE(ExpectPublished());
    // The next round starts from a containerd without the image's content.
    RemoveImages();
  }
}

TEST_F(CtrPublish, ARepublishRestoresWhatWasChangedAndDuplicatesNothing) {
  auto gp = Gantry({"pull", ref_});
  ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;
  ASSERT_EQ(Publish(ref_).exit_code, 0);
  // containerd's records drift: a label dropped, the image-id record gone.
  auto label = Ctr({"images", "label", ref_, "io.cri-containerd.image="});
  ASSERT_EQ(label.exit_code, 0) << label.out << label.err;
  ASSERT_EQ(Ctr({"images", "rm", "--sync", ExpectedNames()[0]}).exit_code, 0);
  auto p = Publish(ref_);
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err << Logs();
  ASSERT_NO_FATAL_FAILURE(ExpectPublished());
  RemoveImages();
}

TEST_F(CtrPublish, PullStillSucceedsWhenContainerdIsDownAndWarns) {
  auto gp =
      Gantry({"pull", ref_, "--containerd", "unix://" + (dir_.path() / "none.sock").string()});
  EXPECT_EQ(gp.exit_code, 0) << gp.out << gp.err;
  EXPECT_NE(gp.err.find("warning"), std::string::npos) << gp.err;
  EXPECT_NE(gp.out.find(ref_), std::string::npos) << gp.out;
  auto ls = Gantry({"images"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("fixture/app"), std::string::npos) << ls.out;
  // The state is kept with the image: a PUBLISHED column, "failed: why".
  EXPECT_NE(ls.out.find("PUBLISHED"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("failed: publish"), std::string::npos) << ls.out;
  // publish on its own reports the failure: containerd unavailable.
  auto p =
      Gantry({"publish", ref_, "--containerd", "unix://" + (dir_.path() / "none.sock").string()});
  EXPECT_EQ(p.exit_code, 5) << p.out << p.err;
}

TEST_F(CtrPublish, ASnapshotterThatIsNotGantrysDoorIsRefused) {
  auto gp = Gantry({"pull", ref_});
  ASSERT_EQ(gp.exit_code, 0) << gp.out << gp.err;
  auto p = Publish(ref_, "overlayfs");
  EXPECT_EQ(p.exit_code, 8) << p.out << p.err;
  EXPECT_NE(p.err.find("has no chain"), std::string::npos) << p.err;
  // Nothing left active in containerd's overlayfs.
  auto ls = CtrLines({"snapshots", "--snapshotter", "overlayfs", "ls"});
  EXPECT_LE(ls.size(), 1u) << ls.size();
  EXPECT_TRUE(CtrLines({"images", "ls", "-q"}).empty());
}

TEST_F(CtrPublish, UnknownImageIsNotFound) {
  auto p = Publish(ref_);
  EXPECT_EQ(p.exit_code, 3) << p.out << p.err;
}

}  // namespace
}  // namespace ctrsnaptest
