// The copy loop's contract (image/copy.h, registry/destination.h) and the
// store as a source (image/store_source.h), on real OCI layouts and a real
// store. The recording destination below is the test's own peer: it
// checks what the copier asks of a destination, not a stand-in for one.

#include "image/copy.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "archive/destinations.h"
#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/image_builder.h"
#include "image/fetch.h"
#include "image/image_record.h"
#include "image/store_source.h"
#include "registry/source.h"

namespace {

namespace fs = std::filesystem;
using common::Errc;

// Keeps blobs in memory. `held` answers HasBlob; `cut_at`: the first
// writer of that blob fails with Unavailable once it holds more than that
// many bytes, keeping exactly `cut_at` (what a registry answers after a
// cut upload).
class RecordingDestination final : public registry::ImageDestination {
 public:
  std::set<common::Digest> held;
  std::map<common::Digest, int64_t> cut_at;
  std::vector<common::Digest> put_blobs;
  std::vector<int64_t> write_offsets;  // offset() before each Write
  std::map<common::Digest, std::string> blobs;
  std::vector<common::Digest> manifests;

  class Writer final : public registry::BlobWriter {
   public:
    Writer(RecordingDestination& d, oci::Descriptor b) : d_(d), b_(std::move(b)) {}
    int64_t offset() const override { return static_cast<int64_t>(data_.size()); }
    common::Status Write(std::span<const std::byte> data) override {
      d_.write_offsets.push_back(offset());
      data_.append(reinterpret_cast<const char*>(data.data()), data.size());
      auto cut = d_.cut_at.find(b_.digest);
      if (cut != d_.cut_at.end() && offset() > cut->second) {
        data_.resize(cut->second);
        d_.cut_at.erase(cut);
        return common::MakeError(Errc::kUnavailable, "upload cut");
      }
      return {};
    }
    common::Status Restart() override {
      data_.clear();
      return {};
    }
    common::Status Finish(const std::atomic<bool>*) override {
      if (common::Digest::Sha256Of(data_) != b_.digest)
        return common::MakeError(Errc::kDataLoss, "digest mismatch");
      d_.blobs[b_.digest] = data_;
      return {};
    }

   private:
    RecordingDestination& d_;
    oci::Descriptor b_;
    std::string data_;
  };

  common::Result<bool> HasBlob(const oci::Descriptor& blob, std::string_view,
                               const std::atomic<bool>*) override {
    return held.contains(blob.digest) || blobs.contains(blob.digest);
  }
  common::Result<std::unique_ptr<registry::BlobWriter>> PutBlob(const oci::Descriptor& blob,
                                                                const std::atomic<bool>*) override {
    put_blobs.push_back(blob.digest);
    return std::unique_ptr<registry::BlobWriter>(std::make_unique<Writer>(*this, blob));
  }
  common::Status PutManifest(const registry::FetchedManifest& m,
                             const std::atomic<bool>*) override {
    manifests.push_back(m.digest);
    return {};
  }
  common::Status Commit(std::span<const registry::DestinationImage>,
                        const std::atomic<bool>*) override {
    return {};
  }
  bool ParallelBlobs() const override { return false; }
  std::string Describe() const override { return "recording"; }
};

class CopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("copy-test");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::move(*d);
    auto built = fixtures::WriteImage(layout(), fixtures::FixtureImageSpec(), "v1");
    ASSERT_TRUE(built) << built.error().message;
    img_ = *built;
  }
  fs::path layout() const { return dir_.path() / "src"; }

  common::TempDir dir_;
  fixtures::BuiltImage img_;
};

TEST_F(CopyTest, LayoutToLayoutKeepsDigests) {
  auto src = registry::OpenLayoutSource(layout(), "v1");
  ASSERT_TRUE(src) << src.error().message;
  const fs::path out = dir_.path() / "out";
  auto dst = archives::OpenLayoutDestination(out, "copied");
  ASSERT_TRUE(dst) << dst.error().message;
  auto c = image::CopyImage(**src, **dst, {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->top.digest, img_.manifest.digest);
  EXPECT_EQ(c->blobs_sent, static_cast<int>(img_.layers.size()) + 1);
  registry::DestinationImage top{.top = c->top, .names = {}};
  ASSERT_TRUE((*dst)->Commit(std::span(&top, 1), nullptr));
  auto index = common::ReadFile(out / "index.json");
  ASSERT_TRUE(index);
  auto j = nlohmann::json::parse(*index);
  ASSERT_EQ(j["manifests"].size(), 1u);
  EXPECT_EQ(j["manifests"][0]["digest"], img_.manifest.digest.str());
  EXPECT_EQ(j["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "copied");
  // What was written reads back as the same image.
  auto back = registry::OpenLayoutSource(out, "copied");
  ASSERT_TRUE(back);
  auto m = (*back)->ResolveTop(nullptr);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->digest, img_.manifest.digest);
  for (const auto& l : img_.layers) {
    auto body = common::ReadFile(out / "blobs" / "sha256" / l.digest.hex());
    ASSERT_TRUE(body) << l.digest.str();
    EXPECT_EQ(common::Digest::Sha256Of(*body), l.digest);
  }
  // A second copy into the same layout sends nothing.
  auto again = archives::OpenLayoutDestination(out, "copied");
  ASSERT_TRUE(again);
  auto c2 = image::CopyImage(**src, **again, {});
  ASSERT_TRUE(c2) << c2.error().message;
  EXPECT_EQ(c2->blobs_sent, 0);
  EXPECT_EQ(c2->blobs_skipped, static_cast<int>(img_.layers.size()) + 1);
}

TEST_F(CopyTest, BlobTheDestinationHoldsIsNotPut) {
  auto src = registry::OpenLayoutSource(layout(), "v1");
  ASSERT_TRUE(src);
  RecordingDestination dst;
  dst.held = {img_.config.digest, img_.layers[0].digest};
  auto c = image::CopyImage(**src, dst, {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->blobs_skipped, 2);
  for (const common::Digest& d : dst.put_blobs) {
    EXPECT_NE(d, img_.config.digest);
    EXPECT_NE(d, img_.layers[0].digest);
  }
  EXPECT_EQ(dst.put_blobs.size(), img_.layers.size() - 1);
  EXPECT_EQ(dst.manifests, std::vector<common::Digest>{img_.manifest.digest});
}

TEST_F(CopyTest, WriterCutWithUnavailableResumesFromItsOffset) {
  auto src = registry::OpenLayoutSource(layout(), "v1");
  ASSERT_TRUE(src);
  // The biggest layer, cut a third of the way in.
  fixtures::BlobInfo big = img_.layers[0];
  for (const auto& l : img_.layers)
    if (l.size > big.size) big = l;
  ASSERT_GT(big.size, 3);
  RecordingDestination dst;
  dst.held = {img_.config.digest};
  for (const auto& l : img_.layers)
    if (l.digest != big.digest) dst.held.insert(l.digest);
  const int64_t cut = big.size / 3;
  dst.cut_at[big.digest] = cut;
  auto c = image::CopyImage(**src, dst, {});
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(dst.blobs.contains(big.digest));
  EXPECT_EQ(dst.put_blobs.size(), 1u);  // one writer, resumed
  // The source was asked again from the kept offset, never from 0.
  bool resumed_at_cut = false;
  for (size_t i = 1; i < dst.write_offsets.size(); ++i) {
    EXPECT_NE(dst.write_offsets[i], 0) << "restarted from the beginning";
    resumed_at_cut = resumed_at_cut || dst.write_offsets[i] == cut;
  }
  EXPECT_TRUE(resumed_at_cut);
}

TEST_F(CopyTest, WriterThatNeverProgressesStops) {
  auto src = registry::OpenLayoutSource(layout(), "v1");
  ASSERT_TRUE(src);
  class Stuck final : public registry::ImageDestination {
   public:
    class W final : public registry::BlobWriter {
     public:
      int64_t offset() const override { return 0; }
      common::Status Write(std::span<const std::byte>) override {
        return common::MakeError(Errc::kUnavailable, "cut");
      }
      common::Status Restart() override { return {}; }
      common::Status Finish(const std::atomic<bool>*) override { return {}; }
    };
    int puts = 0;
    common::Result<bool> HasBlob(const oci::Descriptor&, std::string_view,
                                 const std::atomic<bool>*) override {
      return false;
    }
    common::Result<std::unique_ptr<registry::BlobWriter>> PutBlob(
        const oci::Descriptor&, const std::atomic<bool>*) override {
      ++puts;
      return std::unique_ptr<registry::BlobWriter>(std::make_unique<W>());
    }
    common::Status PutManifest(const registry::FetchedManifest&,
                               const std::atomic<bool>*) override {
      return {};
    }
    common::Status Commit(std::span<const registry::DestinationImage>,
                          const std::atomic<bool>*) override {
      return {};
    }
    bool ParallelBlobs() const override { return false; }
    std::string Describe() const override { return "stuck"; }
  } dst;
  auto c = image::CopyImage(**src, dst, {.max_stalled_resumes = 2});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, Errc::kUnavailable);
  EXPECT_EQ(dst.puts, 1);
}

TEST_F(CopyTest, StoreSourceCopiesTheStoredImageWithItsDigests) {
  const fs::path root = dir_.path() / "store";
  auto content = store::ContentStore::Open(root);
  ASSERT_TRUE(content) << content.error().message;
  auto meta = store::MetadataDb::Open(root);
  ASSERT_TRUE(meta) << meta.error().message;
  {
    auto src = registry::OpenLayoutSource(layout(), "v1");
    ASSERT_TRUE(src);
    image::FetchOptions opts;
    opts.record = image::RecordOf;
    auto pulled = image::FetchFrom(*content, *meta, **src, "localhost/fixture:v1", opts);
    ASSERT_TRUE(pulled) << pulled.error().message;
  }
  const image::PullStore store{.root = root, .content = &*content, .metadata = &*meta};
  auto missing = image::OpenStoreSource(store, "localhost/none:v1", nullptr);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);

  auto src = image::OpenStoreSource(store, "localhost/fixture:v1", nullptr);
  ASSERT_TRUE(src) << src.error().message;
  EXPECT_EQ((*src)->PlatformManifest(), img_.manifest.digest);
  RecordingDestination dst;
  auto c = image::CopyImage(**src, dst, {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->top.digest, img_.manifest.digest);
  EXPECT_EQ(dst.blobs.size(), img_.layers.size() + 1);
  EXPECT_TRUE(dst.blobs.contains(img_.config.digest));
}

}  // namespace
