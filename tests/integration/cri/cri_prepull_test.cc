// Pre-pull lists against the registry fixture: `gantry prepull` (states,
// exit status, --json, pins that `prune --all` keeps and the CRI reports),
// --refresh pulling a tag pushed again, and `gantry serve --prepull`
// re-reading a list swapped as a Kubernetes ConfigMap volume swaps it.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "integration/cri/cri_helpers.h"

namespace critest {
namespace {

class CriPrepull : public CriTest {
 protected:
  void SetUp() override {
    CriTest::SetUp();
    ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
    ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
        *reg_, gantry_->dir() / "layout-a", pulltest::SharedBaseSpec("a"), "fixture/a:v1", &a_));
    ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
        *reg_, gantry_->dir() / "layout-b", pulltest::SharedBaseSpec("b"), "fixture/b:v1", &b_));
  }
  std::string Ref(const std::string& repo_tag) const { return reg_->host() + "/" + repo_tag; }
  // name -> manifest digest, from `gantry images --json`.
  std::map<std::string, std::string> Images() const {
    std::map<std::string, std::string> out;
    nlohmann::json j = gantry_->ImagesJson();
    if (j.is_array())
      for (const auto& i : j) out[i.value("name", "")] = i.value("digest", "");
    return out;
  }
  // repo tag -> pinned, from CRI ListImages.
  static std::map<std::string, bool> PinnedByTag(CriServer& srv) {
    std::map<std::string, bool> out;
    for (const auto& img : List(srv))
      for (const auto& t : img.repo_tags()) out[t] = img.pinned();
    return out;
  }

  std::unique_ptr<fixtures::RegistryFixture> reg_;
  fixtures::BuiltImage a_, b_;
};

TEST_F(CriPrepull, ListWithABadReferenceReportsStatesFailsAndPinsSurvivePruneAll) {
  const fs::path list = gantry_->dir() / "list";
  ASSERT_TRUE(common::AtomicWriteFile(list, "# node images\n" + Ref("fixture/a:v1") + "\n\n" +
                                                Ref("fixture/b:v1") + " linux/amd64\n" +
                                                Ref("fixture/missing:v1") + "  # not pushed\n"));
  auto r = gantry_->Run({"prepull", "--json", "--no-unpack", "--jobs", "2", list.string()});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 1) << pulltest::Describe(*r);
  std::vector<nlohmann::json> rows = pulltest::JsonEvents(r->out);
  ASSERT_EQ(rows.size(), 3u) << r->out;
  for (const auto& row : rows)
    for (const char* key : {"ref", "platform", "digest", "state", "error"})
      EXPECT_TRUE(row.contains(key) && row[key].is_string()) << key << " in " << row.dump();
  EXPECT_EQ(rows[0]["ref"], Ref("fixture/a:v1"));
  EXPECT_EQ(rows[0]["state"], "pulled");
  EXPECT_EQ(rows[0]["digest"], a_.manifest.digest.str());
  EXPECT_EQ(rows[0]["error"], "");
  EXPECT_EQ(rows[1]["state"], "pulled");
  EXPECT_EQ(rows[1]["platform"], "linux/amd64");
  EXPECT_EQ(rows[1]["digest"], b_.manifest.digest.str());
  EXPECT_EQ(rows[2]["state"], "failed");
  EXPECT_EQ(rows[2]["digest"], "");
  EXPECT_NE(rows[2]["error"].get<std::string>().find("fixture/missing"), std::string::npos)
      << rows[2].dump();

  // Again: both present, the text table, still exit 1.
  r = gantry_->Run({"prepull", "--no-unpack", list.string()});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 1) << pulltest::Describe(*r);
  EXPECT_TRUE(r->out.starts_with("REF")) << r->out;
  EXPECT_NE(r->out.find(Ref("fixture/a:v1") + " "), std::string::npos) << r->out;
  EXPECT_NE(r->out.find("present"), std::string::npos) << r->out;
  EXPECT_EQ(r->out.find("pulled"), std::string::npos) << r->out;

  // An image no list names goes with `prune --all`; the listed ones stay.
  fixtures::BuiltImage c;
  ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(*reg_, gantry_->dir() / "layout-c",
                                              pulltest::SharedBaseSpec("c"), "fixture/c:v1", &c));
  ASSERT_NO_FATAL_FAILURE(pulltest::PullOk(*gantry_, {"--no-unpack", Ref("fixture/c:v1")}));
  auto prune = gantry_->Run({"prune", "--all"});
  ASSERT_TRUE(prune) << prune.error().message;
  EXPECT_EQ(prune->exit_code, 0) << pulltest::Describe(*prune);
  auto images = Images();
  EXPECT_TRUE(images.contains(Ref("fixture/a:v1"))) << prune->out;
  EXPECT_TRUE(images.contains(Ref("fixture/b:v1"))) << prune->out;
  EXPECT_FALSE(images.contains(Ref("fixture/c:v1"))) << prune->out;
  ASSERT_NO_FATAL_FAILURE(
      pulltest::ExpectBlobsInStore(gantry_->root(), pulltest::ImageDigests(a_)));

  // The CRI reports the listed images pinned, another one not.
  ASSERT_NO_FATAL_FAILURE(pulltest::PullOk(*gantry_, {"--no-unpack", Ref("fixture/c:v1")}));
  std::unique_ptr<CriServer> srv;
  ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry_, {"--no-unpack"}, &srv));
  auto pinned = PinnedByTag(*srv);
  EXPECT_EQ(pinned, (std::map<std::string, bool>{{Ref("fixture/a:v1"), true},
                                                 {Ref("fixture/b:v1"), true},
                                                 {Ref("fixture/c:v1"), false}}));
  EXPECT_TRUE(Status(*srv, Ref("fixture/a:v1")).image().pinned());

  // Taken off the list: unpinned by the next run, then pruned.
  ASSERT_TRUE(common::AtomicWriteFile(list, Ref("fixture/b:v1") + "\n"));
  r = gantry_->Run({"prepull", "--no-unpack", list.string()});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->exit_code, 0) << pulltest::Describe(*r);
  EXPECT_FALSE(Status(*srv, Ref("fixture/a:v1")).image().pinned());
  prune = gantry_->Run({"prune", "--all"});
  ASSERT_TRUE(prune) << prune.error().message;
  images = Images();
  EXPECT_FALSE(images.contains(Ref("fixture/a:v1"))) << prune->out;
  EXPECT_TRUE(images.contains(Ref("fixture/b:v1"))) << prune->out;
}

TEST_F(CriPrepull, RefreshPullsATagPushedAgain) {
  const fs::path list = gantry_->dir() / "list";
  ASSERT_TRUE(common::AtomicWriteFile(list, Ref("fixture/a:v1") + "\n"));
  auto child =
      gantry_->Spawn({"prepull", "--json", "--no-unpack", "--refresh", "1s", list.string()},
                     gantry_->dir() / "refresh.out", gantry_->dir() / "refresh.err");
  ASSERT_TRUE(child) << child.error().message;
  const std::string name = Ref("fixture/a:v1");
  EXPECT_TRUE(fixtures::WaitUntil([&] { return Images()[name] == a_.manifest.digest.str(); },
                                  std::chrono::seconds(30)));
  fixtures::BuiltImage again;
  ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(
      *reg_, gantry_->dir() / "layout-a2", pulltest::SharedBaseSpec("a2"), "fixture/a:v1", &again));
  ASSERT_NE(again.manifest.digest, a_.manifest.digest);
  EXPECT_TRUE(fixtures::WaitUntil([&] { return Images()[name] == again.manifest.digest.str(); },
                                  std::chrono::seconds(30)));
  auto rc = child->Terminate(std::chrono::seconds(20));
  ASSERT_TRUE(rc) << rc.error().message;
  EXPECT_EQ(*rc, 0);
  auto out = common::ReadFile(gantry_->dir() / "refresh.out");
  ASSERT_TRUE(out);
  bool pulled_again = false;
  for (const auto& row : pulltest::JsonEvents(*out))
    pulled_again =
        pulled_again || (row["digest"] == again.manifest.digest.str() && row["state"] == "pulled");
  EXPECT_TRUE(pulled_again) << *out;
}

// A ConfigMap volume: list -> ..data/list, ..data -> a timestamped
// directory; an update renames a new ..data symlink over the old one.
TEST_F(CriPrepull, ServeRereadsAListSwappedLikeAConfigMap) {
  const fs::path vol = gantry_->dir() / "vol";
  ASSERT_TRUE(common::MkdirAll(vol / "v1"));
  ASSERT_TRUE(common::MkdirAll(vol / "v2"));
  ASSERT_TRUE(common::AtomicWriteFile(vol / "v1" / "list", Ref("fixture/a:v1") + "\n"));
  ASSERT_TRUE(common::AtomicWriteFile(vol / "v2" / "list", Ref("fixture/b:v1") + "\n"));
  fs::create_directory_symlink("v1", vol / "..data");
  fs::create_symlink("..data/list", vol / "list");

  std::unique_ptr<CriServer> srv;
  ASSERT_NO_FATAL_FAILURE(
      CriServer::Start(*gantry_, {"--no-unpack", "--prepull", (vol / "list").string()}, &srv));
  const std::string a = Ref("fixture/a:v1"), b = Ref("fixture/b:v1");
  EXPECT_TRUE(fixtures::WaitUntil(
      [&] {
        return PinnedByTag(*srv) == std::map<std::string, bool>{{a, true}};
      },
      std::chrono::seconds(30)))
      << srv->LogText();

  fs::create_directory_symlink("v2", vol / "..data_tmp");
  fs::rename(vol / "..data_tmp", vol / "..data");
  EXPECT_TRUE(fixtures::WaitUntil(
      [&] {
        return PinnedByTag(*srv) == std::map<std::string, bool>{{a, false}, {b, true}};
      },
      std::chrono::seconds(30)))
      << srv->LogText();
  EXPECT_NE(srv->LogText().find("prepull"), std::string::npos) << srv->LogText();
  EXPECT_NE(srv->LogText().find("state=pulled"), std::string::npos) << srv->LogText();
}

}  // namespace
}  // namespace critest
