// The name `gantry pull oci:DIR[:TAG]` records, and every command finding
// that image again: by the printed name, by its short form (NAME:TAG), and
// by `oci:DIR[:TAG]` itself, whatever --name the pull was given. Before,
// `gantry bundle NAME:v1` looked for docker.io/library/NAME:v1 only and
// `gantry bundle oci:DIR:v1` failed with "empty port in domain".

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fixtures/image_builder.h"
#include "fixtures/require.h"
#include "integration/pull/pull_helpers.h"

namespace pulltest {
namespace {

class PullLayoutNames : public ::testing::Test {
 protected:
  void SetUp() override {
    auto g = Gantry::Create();
    ASSERT_TRUE(g) << g.error().message;
    gantry_ = std::make_unique<Gantry>(std::move(*g));
    layout_ = gantry_->dir() / "Names_Layout";
    auto image = fixtures::WriteImage(layout_, fixtures::FixtureImageSpec(), "v1");
    ASSERT_TRUE(image) << image.error().message;
    image_ = std::move(*image);
    // Another image, in another layout, for names that must not find it.
    auto other = fixtures::WriteImage(
        gantry_->dir() / "other", fixtures::FixtureImageSpec(fixtures::Compression::kZstd), "v1");
    ASSERT_TRUE(other) << other.error().message;
    other_ = std::move(*other);
  }

  // Runs gantry, expecting `exit_code`.
  fixtures::CommandResult Expect(int exit_code, const std::vector<std::string>& args) {
    auto r = gantry_->Run(args);
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return {};
    EXPECT_EQ(r->exit_code, exit_code) << Describe(*r);
    return *r;
  }

  // `gantry inspect TEXT` finds the image recorded as `name`, whose
  // manifest is `image`'s.
  void ExpectInspectFinds(const std::string& text, const std::string& name,
                          const fixtures::BuiltImage& image) {
    SCOPED_TRACE("inspect " + text);
    fixtures::CommandResult r = Expect(0, {"inspect", text});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.out;
    EXPECT_EQ(j["name"], name);
    EXPECT_EQ(j["target"]["digest"], image.manifest.digest.str());
  }

  std::string Source(const std::string& tag = "v1") const {
    return "oci:" + layout_.string() + (tag.empty() ? "" : ":" + tag);
  }

  static constexpr char kName[] = "localhost/names-layout:v1";
  std::unique_ptr<Gantry> gantry_;
  fs::path layout_;
  fixtures::BuiltImage image_, other_;
};

TEST_F(PullLayoutNames, EveryFormOfTheNameFindsTheImagePulledFromALayout) {
  fixtures::CommandResult pull;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {Source()}, &pull));
  // The name recorded is the last line the pull prints.
  EXPECT_TRUE(pull.out.ends_with(std::string("\n") + kName + "\n")) << pull.out;
  EXPECT_EQ(gantry_->ImageNames(), std::vector<std::string>{kName});

  ExpectInspectFinds(kName, kName, image_);
  ExpectInspectFinds("names-layout:v1", kName, image_);      // the short form
  ExpectInspectFinds(Source(), kName, image_);               // the source itself
  ExpectInspectFinds(Source(""), kName, image_);             // without the tag
  ExpectInspectFinds("oci:Names_Layout:v1", kName, image_);  // relative to the cwd
  ExpectInspectFinds("oci:" + layout_.string() + "/:v1", kName, image_);

  fixtures::CommandResult u = Expect(0, {"unpack", "names-layout:v1"});
  EXPECT_NE(u.out.find(kName), std::string::npos) << u.out;

  fixtures::CommandResult rmi = Expect(0, {"rmi", Source()});
  EXPECT_EQ(rmi.out, std::string("Untagged: ") + kName + "\n");
  EXPECT_TRUE(gantry_->ImageNames().empty());
}

TEST_F(PullLayoutNames, OciSourceNotPulledSaysSoAndNeverEmptyPortInDomain) {
  for (const char* cmd : {"inspect", "rmi", "unpack"}) {
    fixtures::CommandResult r = Expect(3, {cmd, Source()});
    EXPECT_EQ(r.err.find("empty port"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("nothing was pulled from that layout"), std::string::npos) << r.err;
  }
  fixtures::CommandResult b =
      Expect(3, {"bundle", Source(), (gantry_->dir() / "bundle").string(), "--no-mount"});
  EXPECT_NE(b.err.find("nothing was pulled from that layout"), std::string::npos) << b.err;
  ASSERT_TRUE(fs::create_directory(gantry_->dir() / "mnt"));
  fixtures::CommandResult m = Expect(3, {"mount", Source(), (gantry_->dir() / "mnt").string()});
  EXPECT_NE(m.err.find("nothing was pulled from that layout"), std::string::npos) << m.err;
  // --attach follows the record of the name the pull would record.
  fixtures::CommandResult a = Expect(3, {"pull", "--attach", Source()});
  EXPECT_NE(a.err.find(std::string("no pull of `") + kName + "` in progress"), std::string::npos)
      << a.err;
  // A short name that is in neither place says where it looked.
  fixtures::CommandResult s = Expect(3, {"inspect", "names-layout:v1"});
  EXPECT_NE(s.err.find("neither docker.io/library/names-layout:v1 nor " + std::string(kName)),
            std::string::npos)
      << s.err;
}

TEST_F(PullLayoutNames, NameFlagRecordsThatNameAndTheSourceStillFindsIt) {
  fixtures::CommandResult pull;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--name", "myapp:2", Source()}, &pull));
  EXPECT_TRUE(pull.out.ends_with("\nlocalhost/myapp:2\n")) << pull.out;
  EXPECT_EQ(gantry_->ImageNames(), std::vector<std::string>{"localhost/myapp:2"});
  ExpectInspectFinds("myapp:2", "localhost/myapp:2", image_);
  ExpectInspectFinds(Source(), "localhost/myapp:2", image_);

  // A name that names its registry is kept as it is.
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--name", "quay.io/org/app:v1", Source()}, &pull));
  EXPECT_TRUE(pull.out.ends_with("\nquay.io/org/app:v1\n")) << pull.out;
  // Both names came from the layout: the source names the image under both.
  fixtures::CommandResult rmi = Expect(0, {"rmi", Source()});
  EXPECT_NE(rmi.out.find("Untagged: localhost/myapp:2\n"), std::string::npos) << rmi.out;
  EXPECT_NE(rmi.out.find("Untagged: quay.io/org/app:v1\n"), std::string::npos) << rmi.out;
  EXPECT_TRUE(gantry_->ImageNames().empty());

  // Refused: a digest in the name, --name for a registry reference.
  fixtures::CommandResult d =
      Expect(2, {"pull", "--name", "app@" + image_.manifest.digest.str(), Source()});
  EXPECT_NE(d.err.find("cannot hold a digest"), std::string::npos) << d.err;
  fixtures::CommandResult r = Expect(2, {"pull", "--name", "app:v1", "127.0.0.1:1/x:v1"});
  EXPECT_NE(r.err.find("only for oci:DIR sources"), std::string::npos) << r.err;
  EXPECT_TRUE(gantry_->ImageNames().empty());
}

TEST_F(PullLayoutNames, RefNameThatIsAReferenceNamesTheImage) {
  // skopeo copy … oci:DIR:quay.io/org/app:v3 writes this annotation.
  auto img = fixtures::WriteImage(layout_, fixtures::FixtureImageSpec(), "quay.io/org/app:v3");
  ASSERT_TRUE(img) << img.error().message;
  fixtures::CommandResult pull;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {Source("quay.io/org/app:v3")}, &pull));
  EXPECT_TRUE(pull.out.ends_with("\nquay.io/org/app:v3\n")) << pull.out;
  ExpectInspectFinds(Source("quay.io/org/app:v3"), "quay.io/org/app:v3", *img);

  // Without a tag, the only image's ref name is the tag.
  auto single = fixtures::WriteImage(gantry_->dir() / "single", fixtures::FixtureImageSpec(), "v7");
  ASSERT_TRUE(single) << single.error().message;
  const std::string src = "oci:" + (gantry_->dir() / "single").string();
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {src}, &pull));
  EXPECT_TRUE(pull.out.ends_with("\nlocalhost/single:v7\n")) << pull.out;
  ExpectInspectFinds(src, "localhost/single:v7", *single);
  ExpectInspectFinds(src + ":v7", "localhost/single:v7", *single);
}

TEST_F(PullLayoutNames, ShortNamePrefersDockerHubsImageOverLocalhost) {
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {Source()}));
  const std::string other = "oci:" + (gantry_->dir() / "other").string() + ":v1";
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--name", "docker.io/library/names-layout:v1", other}));
  // What a short name meant before an image came from a layout stays.
  ExpectInspectFinds("names-layout:v1", "docker.io/library/names-layout:v1", other_);
  ExpectInspectFinds(kName, kName, image_);
  ExpectInspectFinds(Source(), kName, image_);
}

TEST_F(PullLayoutNames, SeveralImagesOfOneLayoutNeedATag) {
  auto v2 =
      fixtures::WriteImage(layout_, fixtures::FixtureImageSpec(fixtures::Compression::kNone), "v2");
  ASSERT_TRUE(v2) << v2.error().message;
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {Source("v1")}));
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {Source("v2")}));
  fixtures::CommandResult r = Expect(2, {"inspect", Source("")});
  EXPECT_NE(r.err.find("names several images pulled from that layout"), std::string::npos) << r.err;
  ExpectInspectFinds(Source("v2"), "localhost/names-layout:v2", *v2);
  ExpectInspectFinds("names-layout:v2", "localhost/names-layout:v2", *v2);
}

TEST_F(PullLayoutNames, MountAndBundleTakeTheShortNameAndTheSource) {
  REQUIRE_ROOT("mounts");
  ASSERT_NO_FATAL_FAILURE(PullOk(*gantry_, {"--name", "myapp:2", Source()}));
  for (const std::string& text : {std::string("myapp:2"), Source()}) {
    SCOPED_TRACE(text);
    const fs::path mnt = gantry_->dir() / "mnt";
    fs::create_directories(mnt);
    Expect(0, {"mount", text, mnt.string()});
    EXPECT_TRUE(fs::exists(mnt / "hello.txt"));
    Expect(0, {"umount", mnt.string()});
    const fs::path bundle = gantry_->dir() / "bundle";
    Expect(0, {"bundle", text, bundle.string(), "--no-mount"});
    EXPECT_TRUE(fs::exists(bundle / "config.json"));
    Expect(0, {"bundle", "rm", bundle.string()});
  }
}

}  // namespace
}  // namespace pulltest
