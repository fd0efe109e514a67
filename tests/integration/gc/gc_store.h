#pragma once
// A store with two images that share their first two layers, pulled from an
// OCI layout (no registry) and unpacked: the starting point of the garbage
// collection and disk usage tests.
//
//   image A = [L1, L2, A3]   localhost/layout:a
//   image B = [L1, L2, B3]   localhost/layout:b
//   chains:  c1 = L1, c2 = c1+L2 (shared), ca = c2+A3, cb = c2+B3

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "fixtures/image_builder.h"
#include "image/unpacker.h"
#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace gctest {

// A gzip layer of `entries`.
fixtures::LayerSpec Layer(std::vector<fixtures::TarEntry> entries);
// Layer specs of the two images (deterministic, small).
std::vector<fixtures::LayerSpec> LayersA();
std::vector<fixtures::LayerSpec> LayersB();

// The digests an image is made of, as written to the layout.
struct ImageFacts {
  std::string name;  // "localhost/layout:a"
  fixtures::BuiltImage built;
  std::vector<std::string> chains;  // bottom first
  std::set<common::Digest> blobs;   // manifest, config, layers
};

class GcStore : public ::testing::TestWithParam<snapshot::Kind> {
 protected:
  void SetUp() override;

  // Pulls `tag` from the layout (image::Fetch, layout source) and, when
  // `unpack`, unpacks it with image::Unpack. Fails the test on error.
  void PullTag(const std::string& tag, bool unpack = true);
  // Writes another image into the layout under `tag`.
  ImageFacts WriteTag(const std::string& tag, const std::vector<fixtures::LayerSpec>& layers);

  image::UnpackOptions UnpackOpts() const;      // sn_ and db_
  std::set<common::Digest> Blobs() const;       // content store files
  std::set<std::string> Committed() const;      // committed snapshot names
  std::set<std::string> SnapshotNames() const;  // every snapshot name
  // A committed snapshot's usage in bytes (0 when missing).
  int64_t SnapshotBytes(const std::string& name) const;
  int64_t BlobBytes(const std::set<common::Digest>& blobs) const;

  std::filesystem::path root() const { return dir_.path() / "root"; }
  std::filesystem::path layout() const { return dir_.path() / "layout"; }

  common::TempDir dir_;
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
  std::unique_ptr<store::ContentStore> content_;
  std::unique_ptr<store::MetadataDb> db_;
  std::unique_ptr<snapshot::Snapshotter> sn_;
  ImageFacts a_, b_;
  std::set<std::string> shared_chains_;    // c1, c2
  std::set<common::Digest> shared_blobs_;  // L1, L2
};

std::string KindParamName(const ::testing::TestParamInfo<snapshot::Kind>& info);

}  // namespace gctest
