// The pull's space check (image/space.h): what a pull still needs, from
// the manifest and what the store holds, against the free space.

#include "image/space.h"

#include <gtest/gtest.h>

#include "common/fd.h"

namespace image {
namespace {

constexpr char kGzip[] = "application/vnd.oci.image.layer.v1.tar+gzip";
constexpr char kTar[] = "application/vnd.oci.image.layer.v1.tar";
constexpr char kConfig[] = "application/vnd.oci.image.config.v1+json";

oci::Descriptor Desc(const std::string& seed, int64_t size, std::string media_type,
                     std::map<std::string, std::string> annotations = {}) {
  oci::Descriptor d;
  d.media_type = std::move(media_type);
  d.digest = common::Digest::Sha256Of(seed);
  d.size = size;
  d.annotations = std::move(annotations);
  return d;
}

constexpr int64_t kMiB = 1 << 20;

TEST(SpaceNeed, CountsMissingBlobsLessTheirPartials) {
  auto config = Desc("config", 1000, kConfig);
  auto a = Desc("a", 10 * kMiB, kGzip);
  auto b = Desc("b", 20 * kMiB, kGzip);
  auto c = Desc("c", 30 * kMiB, kGzip);
  // a is committed, b half downloaded, c and the config missing.
  std::map<common::Digest, int64_t> held = {{a.digest, a.size}, {b.digest, 5 * kMiB}};
  SpaceNeed need = ComputeSpaceNeed({config, a, b, c}, {}, held);
  EXPECT_EQ(need.download, 1000 + 15 * kMiB + 30 * kMiB);
  EXPECT_EQ(need.unpack, 0);
  EXPECT_EQ(need.unknown_unpack, 0);
}

TEST(SpaceNeed, ABlobListedTwiceCountsOnce) {
  auto a = Desc("a", 10 * kMiB, kGzip);
  SpaceNeed need = ComputeSpaceNeed({a, a}, {a, a}, {});
  EXPECT_EQ(need.download, 10 * kMiB);
  EXPECT_EQ(need.unknown_unpack, 1);
}

TEST(SpaceNeed, APartialLargerThanTheBlobCountsAsTheWholeBlob) {
  auto a = Desc("a", 10 * kMiB, kGzip);
  SpaceNeed need = ComputeSpaceNeed({a}, {}, {{a.digest, 11 * kMiB}});
  EXPECT_EQ(need.download, 0);
}

TEST(SpaceNeed, UnpackedSizeOnlyWhereStated) {
  auto annotated =
      Desc("annotated", 10 * kMiB, kGzip, {{std::string(kAnnotationUncompressedSize), "41943040"}});
  auto plain = Desc("plain", 3 * kMiB, kTar);
  auto unknown = Desc("unknown", 7 * kMiB, kGzip);
  auto malformed =
      Desc("malformed", 7 * kMiB, kGzip, {{std::string(kAnnotationUncompressedSize), "12MB"}});
  SpaceNeed need = ComputeSpaceNeed({annotated, plain, unknown, malformed},
                                    {annotated, plain, unknown, malformed}, {});
  EXPECT_EQ(need.unpack, 40 * kMiB + 3 * kMiB);
  EXPECT_EQ(need.unknown_unpack, 2);
  EXPECT_EQ(need.download, 27 * kMiB);
}

TEST(SpaceNeed, LayersAlreadyUnpackedAreLeftOutByTheCaller) {
  auto a = Desc("a", 3 * kMiB, kTar);
  // In the store and unpacked: the caller lists nothing to unpack.
  SpaceNeed need = ComputeSpaceNeed({a}, {}, {{a.digest, a.size}});
  EXPECT_EQ(need.download, 0);
  EXPECT_EQ(need.unpack, 0);
}

TEST(SpaceDecision, OneFileSystemAddsDownloadAndUnpack) {
  SpaceNeed need{.download = 100 * kMiB, .unpack = 200 * kMiB};
  FsSpace fs{.path = "/store", .fs_id = 7, .free = 310 * kMiB};
  SpaceVerdict v = DecideSpace(
      need, fs, FsSpace{.path = "/store/snapshots", .fs_id = 7, .free = 310 * kMiB}, 16 * kMiB);
  EXPECT_FALSE(v.enough);
  EXPECT_EQ(v.path, "/store");
  EXPECT_EQ(v.need, 316 * kMiB);
  EXPECT_EQ(v.free, 310 * kMiB);
  EXPECT_TRUE(DecideSpace(need, fs, std::nullopt, 10 * kMiB).enough);
  EXPECT_FALSE(DecideSpace(need, fs, std::nullopt, 10 * kMiB + 1).enough);
}

TEST(SpaceDecision, AnImageAlreadyInTheStoreIsPulledAgainOnAFullDisk) {
  FsSpace full{.path = "/store", .fs_id = 7, .free = 0};
  EXPECT_TRUE(DecideSpace(SpaceNeed{}, full, std::nullopt, 16 * kMiB).enough);
  EXPECT_FALSE(DecideSpace(SpaceNeed{.download = 1}, full, std::nullopt, 16 * kMiB).enough);
  // Held but not unpacked, size unknown: something will be written.
  EXPECT_FALSE(DecideSpace(SpaceNeed{.unknown_unpack = 1}, full, std::nullopt, 16 * kMiB).enough);
}

TEST(SpaceDecision, TwoFileSystemsAreCheckedEachForItsPart) {
  SpaceNeed need{.download = 100 * kMiB, .unpack = 200 * kMiB};
  FsSpace content{.path = "/store/content", .fs_id = 1, .free = 150 * kMiB};
  FsSpace snaps{.path = "/store/snapshots", .fs_id = 2, .free = 250 * kMiB};
  EXPECT_TRUE(DecideSpace(need, content, snaps, 16 * kMiB).enough);
  snaps.free = 210 * kMiB;
  SpaceVerdict v = DecideSpace(need, content, snaps, 16 * kMiB);
  EXPECT_FALSE(v.enough);
  EXPECT_EQ(v.path, "/store/snapshots");
  EXPECT_EQ(v.need, 216 * kMiB);
  content.free = 100 * kMiB;
  v = DecideSpace(need, content, snaps, 16 * kMiB);
  EXPECT_FALSE(v.enough);
  EXPECT_EQ(v.path, "/store/content");
  EXPECT_EQ(v.need, 116 * kMiB);
}

TEST(SpaceDecision, TheRefusalIsOneLineNamingPathNeedFreeAndTheOverride) {
  SpaceNeed need{.download = 1229 * kMiB, .unpack = 0, .unknown_unpack = 2};
  SpaceVerdict v{
      .enough = false, .path = "/var/lib/gantry/content", .need = 1245 * kMiB, .free = 300 * kMiB};
  EXPECT_EQ(DescribeShortage(v, need),
            "not enough space in `/var/lib/gantry/content`: need 1.2 GiB, 300.0 MiB free (not "
            "counting the unpacked size of 2 layers, which the manifest does not state) "
            "(--ignore-space-check to pull anyway)");
  need.unknown_unpack = 0;
  EXPECT_EQ(DescribeShortage(v, need),
            "not enough space in `/var/lib/gantry/content`: need 1.2 GiB, 300.0 MiB free "
            "(--ignore-space-check to pull anyway)");
}

TEST(SpaceDecision, BinaryBytes) {
  EXPECT_EQ(BinaryBytes(512), "512 B");
  EXPECT_EQ(BinaryBytes(1536), "1.5 KiB");
  EXPECT_EQ(BinaryBytes(300 * kMiB), "300.0 MiB");
  EXPECT_EQ(BinaryBytes(int64_t{5} << 40), "5.0 TiB");
}

TEST(SpaceCheck, ADirectoryNotMadeYetIsMeasuredOnItsParent) {
  auto tmp = common::TempDir::Create("space-test");
  ASSERT_TRUE(tmp) << tmp.error().message;
  auto here = StatSpace(tmp->path());
  ASSERT_TRUE(here) << here.error().message;
  auto missing = StatSpace(tmp->path() / "snapshots" / "deeper");
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_EQ(missing->path, tmp->path() / "snapshots" / "deeper");
  EXPECT_EQ(missing->fs_id, here->fs_id);
  EXPECT_GT(here->free, 0);
}

TEST(SpaceCheck, RefusesWithResourceExhaustedWhenTheNeedExceedsTheFreeSpace) {
  auto tmp = common::TempDir::Create("space-test");
  ASSERT_TRUE(tmp) << tmp.error().message;
  auto fs = StatSpace(tmp->path());
  ASSERT_TRUE(fs) << fs.error().message;
  EXPECT_TRUE(CheckSpace(SpaceNeed{}, tmp->path(), {}, 0));
  auto st = CheckSpace(SpaceNeed{.download = fs->free + (int64_t{1} << 40)}, tmp->path(),
                       tmp->path() / "snapshots", kSpaceMargin);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, common::Errc::kResourceExhausted);
  EXPECT_NE(st.error().message.find("not enough space in `" + tmp->path().string() + "`"),
            std::string::npos)
      << st.error().message;
}

}  // namespace
}  // namespace image
