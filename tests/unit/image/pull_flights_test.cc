// The in-flight table of the pulls (image/pull_flights.h): followers of a
// blob get its bytes as the download writes them, the last one only once
// it is verified; a failure wakes them with an error; PullThrough starts one
// pull per reference and answers once the manifest is stored.

#include "image/pull_flights.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace image {
namespace {

using common::Errc;

class PullFlightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("flights");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    path_ = dir_.path() / "ingest";
    writer_ = common::UniqueFd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    ASSERT_TRUE(writer_);
    for (int i = 0; i < 300000; ++i) data_.push_back(static_cast<char>('a' + i % 23));
    blob_.digest = common::Digest::Sha256Of(data_);
    blob_.size = static_cast<int64_t>(data_.size());
    blob_.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
  }

  common::UniqueFd Readable() const {
    return common::UniqueFd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  }

  // Appends data_[from, to) to the ingest file and publishes the offset.
  void WriteRange(PullFlights::Publisher& pub, size_t from, size_t to) {
    ASSERT_EQ(::pwrite(writer_.get(), data_.data() + from, to - from, static_cast<off_t>(from)),
              static_cast<ssize_t>(to - from));
    pub.Progress(blob_.digest, static_cast<int64_t>(to));
  }

  // Reads everything a follower returns until its end or an error.
  static common::Result<std::string> ReadAll(PullFlights::Follower& f) {
    std::string out;
    std::byte buf[7000];
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, f.Read(buf));
      if (n == 0) return out;
      out.append(reinterpret_cast<const char*>(buf), n);
    }
  }

  common::TempDir dir_;
  std::filesystem::path path_;
  common::UniqueFd writer_;
  std::string data_;
  oci::Descriptor blob_;
  PullFlights flights_;
};

TEST_F(PullFlightsTest, FollowerGetsEveryByteAsTheDownloadWritesThem) {
  PullFlights::Publisher pub(&flights_, "127.0.0.1:5000/x:1");
  pub.Expect(blob_);
  // Two followers, one from before the download starts writing.
  auto early = flights_.Follow(blob_.digest);
  ASSERT_TRUE(early);
  EXPECT_EQ(early->size(), blob_.size);
  common::Result<std::string> got_early = std::string();
  std::thread reader([&] { got_early = ReadAll(*early); });
  pub.Writing(blob_.digest, Readable(), 0);
  WriteRange(pub, 0, 100000);
  auto late = flights_.Follow(blob_.digest);
  ASSERT_TRUE(late);
  common::Result<std::string> got_late = std::string();
  std::thread reader2([&] { got_late = ReadAll(*late); });
  WriteRange(pub, 100000, data_.size());
  // Renamed like a commit: the followers' descriptors still read it.
  ASSERT_EQ(::rename(path_.c_str(), (dir_.path() / "blob").c_str()), 0);
  pub.Done(blob_.digest, {});
  reader.join();
  reader2.join();
  ASSERT_TRUE(got_early) << got_early.error().message;
  ASSERT_TRUE(got_late) << got_late.error().message;
  EXPECT_TRUE(*got_early == data_);
  EXPECT_TRUE(*got_late == data_);
  // Done: out of the table; the store has it now.
  EXPECT_FALSE(flights_.Follow(blob_.digest));
}

TEST_F(PullFlightsTest, LastByteWaitsForTheVerification) {
  PullFlights::Publisher pub(&flights_, "127.0.0.1:5000/x:1");
  pub.Expect(blob_);
  auto f = flights_.Follow(blob_.digest, std::chrono::milliseconds(50));
  ASSERT_TRUE(f);
  pub.Writing(blob_.digest, Readable(), 0);
  WriteRange(pub, 0, data_.size());
  std::string got;
  std::byte buf[1 << 16];
  common::Result<size_t> n = size_t{0};
  while ((n = f->Read(buf)) && *n > 0) got.append(reinterpret_cast<const char*>(buf), *n);
  // Every byte written, none verified: all but the last came, then the
  // follower gave up waiting.
  EXPECT_EQ(got.size(), data_.size() - 1);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code, Errc::kUnavailable) << n.error().message;
}

TEST_F(PullFlightsTest, FollowerAfterCompletionReadsTheStoredBlob) {
  PullFlights::Publisher pub(&flights_, "127.0.0.1:5000/x:1");
  pub.Expect(blob_);
  auto f = flights_.Follow(blob_.digest);
  ASSERT_TRUE(f);
  pub.Writing(blob_.digest, Readable(), 0);
  WriteRange(pub, 0, data_.size());
  ASSERT_EQ(::rename(path_.c_str(), (dir_.path() / "blob").c_str()), 0);
  pub.Done(blob_.digest, {});
  auto got = ReadAll(*f);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_TRUE(*got == data_);
}

TEST_F(PullFlightsTest, FailureWakesFollowersWithTheError) {
  PullFlights::Publisher pub(&flights_, "127.0.0.1:5000/x:1");
  pub.Expect(blob_);
  auto f = flights_.Follow(blob_.digest);
  ASSERT_TRUE(f);
  pub.Writing(blob_.digest, Readable(), 0);
  WriteRange(pub, 0, 1000);
  common::Result<std::string> got = std::string();
  std::thread reader([&] { got = ReadAll(*f); });
  pub.Done(blob_.digest, common::MakeError(Errc::kDataLoss, "digest mismatch"));
  reader.join();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kDataLoss);
  EXPECT_NE(got.error().message.find("digest mismatch"), std::string::npos) << got.error().message;
  EXPECT_FALSE(flights_.Follow(blob_.digest));
}

TEST_F(PullFlightsTest, PullThatEndsWithoutTheBlobFailsItsFollowers) {
  std::optional<PullFlights::Follower> f;
  {
    PullFlights::Publisher pub(&flights_, "127.0.0.1:5000/x:1");
    pub.Expect(blob_);
    f = flights_.Follow(blob_.digest);
    ASSERT_TRUE(f);
  }
  auto got = ReadAll(*f);
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kUnavailable) << got.error().message;
}

TEST_F(PullFlightsTest, SharedBlobFailsOnlyWhenEveryPullGaveUp) {
  PullFlights::Publisher a(&flights_, "127.0.0.1:5000/a:1");
  PullFlights::Publisher b(&flights_, "127.0.0.1:5000/b:1");
  a.Expect(blob_);
  b.Expect(blob_);
  auto f = flights_.Follow(blob_.digest);
  ASSERT_TRUE(f);
  a.Done(blob_.digest, common::MakeError(Errc::kUnavailable, "a went away"));
  // b writes it after all.
  b.Writing(blob_.digest, Readable(), 0);
  WriteRange(b, 0, data_.size());
  b.Done(blob_.digest, {});
  auto got = ReadAll(*f);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_TRUE(*got == data_);
}

TEST_F(PullFlightsTest, ShutdownCancelsFollowers) {
  PullFlights::Publisher pub(&flights_, "127.0.0.1:5000/x:1");
  pub.Expect(blob_);
  auto f = flights_.Follow(blob_.digest);
  ASSERT_TRUE(f);
  common::Result<std::string> got = std::string();
  std::thread reader([&] { got = ReadAll(*f); });
  flights_.Shutdown();
  reader.join();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, Errc::kCancelled);
}

TEST_F(PullFlightsTest, ManifestsArePublishedUntilThePullEnds) {
  oci::Descriptor index;
  index.media_type = "application/vnd.oci.image.index.v1+json";
  index.digest = common::Digest::Sha256Of("index");
  index.size = 5;
  {
    PullFlights::Publisher pub(&flights_, "127.0.0.1:5000/x:1");
    pub.ManifestStored(index, /*target=*/true);
    auto by_name = flights_.FindTarget("127.0.0.1:5000/x:1");
    ASSERT_TRUE(by_name);
    EXPECT_EQ(by_name->digest, index.digest);
    auto by_digest = flights_.FindManifest(index.digest);
    ASSERT_TRUE(by_digest);
    EXPECT_EQ(by_digest->media_type, index.media_type);
  }
  EXPECT_FALSE(flights_.FindTarget("127.0.0.1:5000/x:1"));
  EXPECT_FALSE(flights_.FindManifest(index.digest));
}

TEST_F(PullFlightsTest, PullThroughAnswersOnceTheManifestIsStoredWithOnePull) {
  auto ref = registry::ImageRef::Parse("127.0.0.1:5000/x:1");
  ASSERT_TRUE(ref);
  oci::Descriptor target;
  target.media_type = "application/vnd.oci.image.manifest.v1+json";
  target.digest = common::Digest::Sha256Of("manifest");
  target.size = 8;
  std::atomic<int> pulls{0};
  std::mutex mu;
  std::condition_variable cv;
  bool finish = false;
  PullThrough through(flights_,
                      [&](const registry::ImageRef& r) -> common::Result<oci::Descriptor> {
                        ++pulls;
                        PullFlights::Publisher pub(&flights_, r.str());
                        pub.Expect(blob_);
                        pub.ManifestStored(target, /*target=*/true);
                        // The pull goes on after the manifest is answered.
                        std::unique_lock l(mu);
                        cv.wait(l, [&] { return finish; });
                        return target;
                      });
  common::Result<oci::Descriptor> first = oci::Descriptor{}, second = oci::Descriptor{};
  std::thread a([&] { first = through.Manifest(*ref); });
  std::thread b([&] { second = through.Manifest(*ref); });
  a.join();
  b.join();
  ASSERT_TRUE(first) << first.error().message;
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(first->digest, target.digest);
  EXPECT_EQ(second->digest, target.digest);
  EXPECT_EQ(pulls.load(), 1);
  // Its blob is in flight while the pull runs.
  EXPECT_TRUE(flights_.Follow(blob_.digest));
  {
    std::lock_guard l(mu);
    finish = true;
  }
  cv.notify_all();
}

TEST_F(PullFlightsTest, PullThroughReturnsThePullsError) {
  auto ref = registry::ImageRef::Parse("127.0.0.1:5000/missing:1");
  ASSERT_TRUE(ref);
  PullThrough through(flights_, [](const registry::ImageRef&) -> common::Result<oci::Descriptor> {
    return common::MakeError(Errc::kNotFound, "manifest unknown");
  });
  auto d = through.Manifest(*ref);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, Errc::kNotFound);
}

}  // namespace
}  // namespace image
