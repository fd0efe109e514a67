// Codecs, magic checks and digests, through ApplyLayer.

#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "unit/unpack/test_util.h"

namespace unpack {
namespace {

using common::Digest;
using common::Errc;
using fixtures::File;
using oci::Compression;
using testing::Blob;
using testing::ReadAll;
using testing::Sandbox;
using testing::Tar;
using testing::Unprivileged;

// Pseudo-random bytes (poorly compressible), deterministic.
std::string Noise(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::vector<fixtures::TarEntry> SomeEntries() {
  return {fixtures::Dir("d"), File("d/big", Noise(3 << 20, 1) + std::string(2 << 20, 'z')),
          File("d/small", "hello\n"), File("empty", "")};
}

struct CodecCase {
  const char* name;
  Compression compression;
  GzipDecoder gzip;
  size_t chunk;
  bool decode_thread = true;
};

class UnpackCodecTest : public ::testing::TestWithParam<CodecCase> {};

TEST_P(UnpackCodecTest, RoundTripsAndReportsBothDigests) {
  const CodecCase& c = GetParam();
  const std::string tar = Tar(SomeEntries());
  auto blob = fixtures::Compress(tar, testing::ToFixture(c.compression));
  ASSERT_TRUE(blob);
  Sandbox box;
  ApplyOptions o = Unprivileged(WhiteoutMode::kOverlay, c.compression);
  o.gzip_decoder = c.gzip;
  o.decode_thread = c.decode_thread;
  o.expected_blob_digest = Digest::Sha256Of(*blob);
  o.expected_diff_id = Digest::Sha256Of(tar);
  auto r = box.Apply(*blob, o, c.chunk);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->blob_digest, Digest::Sha256Of(*blob));
  EXPECT_EQ(r->diff_id, Digest::Sha256Of(tar));
  EXPECT_EQ(r->compressed_size, static_cast<int64_t>(blob->size()));
  EXPECT_EQ(r->uncompressed_size, static_cast<int64_t>(tar.size()));
  EXPECT_EQ(r->entries, 4);
  EXPECT_EQ(ReadAll(box.root() / "d/small"), "hello\n");
  auto big = ReadAll(box.root() / "d/big");
  ASSERT_TRUE(big);
  EXPECT_EQ(Digest::Sha256Of(*big),
            Digest::Sha256Of(Noise(3 << 20, 1) + std::string(2 << 20, 'z')));
  EXPECT_EQ(ReadAll(box.root() / "empty"), "");
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, UnpackCodecTest,
    ::testing::Values(
        CodecCase{"plain", Compression::kNone, GzipDecoder::kIsal, 1 << 20},
        CodecCase{"plain_small_reads", Compression::kNone, GzipDecoder::kIsal, 997},
        CodecCase{"gzip_isal", Compression::kGzip, GzipDecoder::kIsal, 1 << 20},
        CodecCase{"gzip_isal_small_reads", Compression::kGzip, GzipDecoder::kIsal, 61},
        CodecCase{"gzip_zlib", Compression::kGzip, GzipDecoder::kZlib, 1 << 20},
        CodecCase{"gzip_zlib_small_reads", Compression::kGzip, GzipDecoder::kZlib, 61},
        CodecCase{"zstd", Compression::kZstd, GzipDecoder::kIsal, 1 << 20},
        CodecCase{"zstd_small_reads", Compression::kZstd, GzipDecoder::kIsal, 61},
        CodecCase{"plain_inline", Compression::kNone, GzipDecoder::kIsal, 4096, false},
        CodecCase{"gzip_isal_inline", Compression::kGzip, GzipDecoder::kIsal, 4096, false},
        CodecCase{"zstd_inline", Compression::kZstd, GzipDecoder::kIsal, 4096, false}),
    [](const auto& p) { return std::string(p.param.name); });

class UnpackGzipDecoderTest : public ::testing::TestWithParam<GzipDecoder> {
 protected:
  ApplyOptions Options() const {
    ApplyOptions o = Unprivileged(WhiteoutMode::kOverlay, Compression::kGzip);
    o.gzip_decoder = GetParam();
    return o;
  }
};

TEST_P(UnpackGzipDecoderTest, MultiMemberStreamIsOneTar) {
  const std::string tar = Tar({File("a", Noise(100000, 2)), File("b", "bee")});
  const size_t cut = 700;  // inside the first file's data
  auto m1 = fixtures::Compress(tar.substr(0, cut), fixtures::Compression::kGzip);
  auto m2 = fixtures::Compress(tar.substr(cut), fixtures::Compression::kGzip);
  ASSERT_TRUE(m1 && m2);
  for (size_t chunk : {size_t{1} << 20, size_t{5}}) {
    Sandbox box;
    auto r = box.Apply(*m1 + *m2, Options(), chunk);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->diff_id, Digest::Sha256Of(tar));
    EXPECT_EQ(r->blob_digest, Digest::Sha256Of(*m1 + *m2));
    EXPECT_EQ(ReadAll(box.root() / "b"), "bee");
  }
}

TEST_P(UnpackGzipDecoderTest, TrailingZerosAreHashedAndAccepted) {
  const std::string blob =
      Blob({File("a", "x")}, fixtures::Compression::kGzip) + std::string(4096, '\0');
  Sandbox box;
  auto r = box.Apply(blob, Options(), 100);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->blob_digest, Digest::Sha256Of(blob));
  EXPECT_EQ(r->compressed_size, static_cast<int64_t>(blob.size()));
}

TEST_P(UnpackGzipDecoderTest, TrailingGarbageIsDataLoss) {
  const std::string blob = Blob({File("a", "x")}, fixtures::Compression::kGzip) + "garbage";
  Sandbox box;
  auto r = box.Apply(blob, Options());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kDataLoss);
  EXPECT_NE(r.error().message.find("trailing garbage"), std::string::npos) << r.error().message;
}

TEST_P(UnpackGzipDecoderTest, TruncatedStreamIsDataLoss) {
  std::string blob = Blob({File("a", Noise(50000, 3))}, fixtures::Compression::kGzip);
  blob.resize(blob.size() - 20);
  Sandbox box;
  auto r = box.Apply(blob, Options());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kDataLoss) << r.error().message;
}

TEST_P(UnpackGzipDecoderTest, CorruptStreamIsDataLoss) {
  std::string blob = Blob({File("a", Noise(50000, 4))}, fixtures::Compression::kGzip);
  for (size_t i = 100; i < 200; ++i) blob[i] = static_cast<char>(blob[i] ^ 0x5a);
  Sandbox box;
  auto r = box.Apply(blob, Options());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kDataLoss) << r.error().message;
  EXPECT_NE(r.error().message.find("gzip"), std::string::npos) << r.error().message;
}

TEST_P(UnpackGzipDecoderTest, WrongCrcIsDataLoss) {
  std::string blob = Blob({File("a", "content")}, fixtures::Compression::kGzip);
  blob[blob.size() - 6] = static_cast<char>(blob[blob.size() - 6] ^ 1);  // CRC32 trailer
  Sandbox box;
  auto r = box.Apply(blob, Options());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kDataLoss) << r.error().message;
}

INSTANTIATE_TEST_SUITE_P(Decoders, UnpackGzipDecoderTest,
                         ::testing::Values(GzipDecoder::kIsal, GzipDecoder::kZlib),
                         [](const auto& p) {
                           return p.param == GzipDecoder::kIsal ? "isal" : "zlib";
                         });

TEST(UnpackZstdTest, ConcatenatedFramesAreOneTar) {
  const std::string tar = Tar({File("a", Noise(70000, 5)), File("b", "bee")});
  auto f1 = fixtures::Compress(tar.substr(0, 1000), fixtures::Compression::kZstd);
  auto f2 = fixtures::Compress(tar.substr(1000), fixtures::Compression::kZstd);
  ASSERT_TRUE(f1 && f2);
  Sandbox box;
  auto r = box.Apply(*f1 + *f2, Unprivileged(WhiteoutMode::kOverlay, Compression::kZstd), 7);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->diff_id, Digest::Sha256Of(tar));
  EXPECT_EQ(ReadAll(box.root() / "b"), "bee");
}

TEST(UnpackZstdTest, TruncatedAndGarbageAreDataLoss) {
  std::string blob = Blob({File("a", Noise(50000, 6))}, fixtures::Compression::kZstd);
  const auto o = Unprivileged(WhiteoutMode::kOverlay, Compression::kZstd);
  {
    Sandbox box;
    auto r = box.Apply(blob.substr(0, blob.size() - 10), o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kDataLoss) << r.error().message;
  }
  {
    Sandbox box;
    auto r = box.Apply(blob + "xyz!", o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kDataLoss) << r.error().message;
  }
  {
    Sandbox box;
    auto r = box.Apply(blob + std::string(100, '\0'), o);
    ASSERT_TRUE(r) << r.error().message;
  }
}

// Every way a layer's bytes can fail to be what its media type says, and
// where each is detected (the magic check, the decoder, the tar reader):
// all are DataLoss, so that `gantry` exits 6 whichever stage noticed
// (issue 13, 6a: random bytes declared gzip used to exit 2, a gzip of a
// non-tar 6).
struct CorruptCase {
  const char* name;
  Compression declared;
  std::string blob;
  const char* message;  // in the error, after "apply layer <digest>: "
};

std::string Gz(const std::string& data) {
  return *fixtures::Compress(data, fixtures::Compression::kGzip);
}
std::string Zst(const std::string& data) {
  return *fixtures::Compress(data, fixtures::Compression::kZstd);
}
std::string Cut(std::string s, size_t drop) {
  s.resize(s.size() - drop);
  return s;
}
// A tar whose first header has a byte changed after its checksum was set.
std::string BadChecksumTar() {
  std::string tar = Tar({File("a", "x")});
  tar[10] = 'Z';  // inside the name field
  return tar;
}

std::vector<CorruptCase> CorruptCases() {
  const std::string noise = Noise(5000, 11);
  const std::string tar = Tar({File("a", Noise(50000, 12))});
  return {
      {"random_as_gzip", Compression::kGzip, noise, "declared gzip but starts with no known magic"},
      {"random_as_zstd", Compression::kZstd, noise, "declared zstd but starts with no known magic"},
      {"random_as_tar", Compression::kNone, noise, "read tar: "},
      {"zstd_as_gzip", Compression::kGzip, Zst(tar), "declared gzip but starts with zstd magic"},
      {"gzip_as_zstd", Compression::kZstd, Gz(tar), "declared zstd but starts with gzip magic"},
      {"gzip_as_tar", Compression::kNone, Gz(tar),
       "declared uncompressed but starts with gzip magic"},
      {"zstd_as_tar", Compression::kNone, Zst(tar),
       "declared uncompressed but starts with zstd magic"},
      {"empty_as_gzip", Compression::kGzip, "", "declared gzip but is empty"},
      {"empty_as_zstd", Compression::kZstd, "", "declared zstd but is empty"},
      {"gzip_of_non_tar", Compression::kGzip, Gz(noise), "read tar: "},
      {"zstd_of_non_tar", Compression::kZstd, Zst(noise), "read tar: "},
      {"gzip_truncated", Compression::kGzip, Cut(Gz(tar), 100), "truncated gzip stream"},
      {"zstd_truncated", Compression::kZstd, Cut(Zst(tar), 100), "truncated zstd stream"},
      {"gzip_header_only", Compression::kGzip, Gz(tar).substr(0, 10), "truncated gzip stream"},
      {"gzip_bad_deflate", Compression::kGzip, Gz(tar).substr(0, 10) + noise,
       "corrupt gzip stream"},
      {"zstd_bad_frame", Compression::kZstd, Zst(tar).substr(0, 4) + noise, "corrupt zstd stream"},
      {"tar_truncated", Compression::kNone, Cut(tar, 40000), "read data: "},
      {"tar_bad_checksum", Compression::kNone, BadChecksumTar(), "read tar: "},
      {"gzip_tar_bad_checksum", Compression::kGzip, Gz(BadChecksumTar()), "read tar: "},
  };
}

void PrintTo(const CorruptCase& c, std::ostream* os) { *os << c.name; }

class UnpackCorruptLayerTest : public ::testing::TestWithParam<CorruptCase> {};

TEST_P(UnpackCorruptLayerTest, IsDataLossNamingTheLayer) {
  const CorruptCase& c = GetParam();
  for (bool thread : {true, false}) {
    SCOPED_TRACE(thread ? "decode thread" : "inline");
    Sandbox box;
    ApplyOptions o = Unprivileged(WhiteoutMode::kOverlay, c.declared);
    o.decode_thread = thread;
    o.expected_blob_digest = Digest::Sha256Of(c.blob);
    auto r = box.Apply(c.blob, o);
    ASSERT_FALSE(r) << "a corrupt layer was applied";
    EXPECT_EQ(r.error().code, Errc::kDataLoss) << r.error().message;
    const std::string prefix = "apply layer " + Digest::Sha256Of(c.blob).str() + ": ";
    EXPECT_TRUE(r.error().message.starts_with(prefix)) << r.error().message;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos) << r.error().message;
    EXPECT_TRUE(box.Untouched());
  }
}

INSTANTIATE_TEST_SUITE_P(Corrupt, UnpackCorruptLayerTest, ::testing::ValuesIn(CorruptCases()),
                         [](const auto& p) { return std::string(p.param.name); });

TEST(UnpackStreamTest, EmptyInputIsAnEmptyLayerWhenUncompressed) {
  Sandbox box;
  auto r = box.Apply("", Unprivileged());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->entries, 0);
  EXPECT_EQ(r->diff_id, Digest::Sha256Of(""));
}

TEST(UnpackStreamTest, EmptyTarOfZeroBlocksIsAnEmptyLayer) {
  const std::string tar = Tar({});
  ASSERT_EQ(tar, std::string(1024, '\0'));
  Sandbox box;
  auto r = box.Apply(tar, Unprivileged());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->entries, 0);
  EXPECT_EQ(r->diff_id, Digest::Sha256Of(tar));
}

TEST(UnpackStreamTest, BytesAfterTheTarEndAreHashedIntoTheDiffId) {
  const std::string tar = Tar({File("a", "x")}) + std::string(9216, '\0') + "tail";
  auto blob = fixtures::Compress(tar, fixtures::Compression::kGzip);
  ASSERT_TRUE(blob);
  Sandbox box;
  auto r = box.Apply(*blob, Unprivileged(WhiteoutMode::kOverlay, Compression::kGzip), 333);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->diff_id, Digest::Sha256Of(tar));
  EXPECT_EQ(r->uncompressed_size, static_cast<int64_t>(tar.size()));
  EXPECT_EQ(r->blob_digest, Digest::Sha256Of(*blob));
}

TEST(UnpackDigestTest, WrongDiffIdIsDataLossNamingBoth) {
  const std::string tar = Tar({File("a", "x")});
  const std::string blob = *fixtures::Compress(tar, fixtures::Compression::kGzip);
  const Digest wrong = Digest::Sha256Of("something else");
  Sandbox box;
  ApplyOptions o = Unprivileged(WhiteoutMode::kOverlay, Compression::kGzip);
  o.expected_blob_digest = Digest::Sha256Of(blob);
  o.expected_diff_id = wrong;
  auto r = box.Apply(blob, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kDataLoss);
  EXPECT_NE(r.error().message.find("diffID mismatch: expected " + wrong.str() + ", got " +
                                   Digest::Sha256Of(tar).str()),
            std::string::npos)
      << r.error().message;
}

TEST(UnpackDigestTest, WrongBlobDigestIsDataLossNamingBoth) {
  const std::string blob = Blob({File("a", "x")}, fixtures::Compression::kZstd);
  const Digest wrong = Digest::Sha256Of("another blob");
  Sandbox box;
  ApplyOptions o = Unprivileged(WhiteoutMode::kOverlay, Compression::kZstd);
  o.expected_blob_digest = wrong;
  auto r = box.Apply(blob, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kDataLoss);
  EXPECT_EQ(r.error().message, "apply layer " + wrong.str() + ": blob digest mismatch: expected " +
                                   wrong.str() + ", got " + Digest::Sha256Of(blob).str());
}

// hash_blob false: the caller has the compressed bytes verified elsewhere
// (the content store). No blob digest is computed or checked; the expected
// one only names the layer; the diffID is still checked.
TEST(UnpackDigestTest, BlobNotHashedWhenTheCallerVerifiesItButTheDiffIdStillIs) {
  const std::string tar = Tar({File("a", "x")});
  const std::string blob = *fixtures::Compress(tar, fixtures::Compression::kGzip);
  const Digest other = Digest::Sha256Of("another blob");
  {
    Sandbox box;
    ApplyOptions o = Unprivileged(WhiteoutMode::kOverlay, Compression::kGzip);
    o.hash_blob = false;
    o.expected_blob_digest = other;
    o.expected_diff_id = Digest::Sha256Of(tar);
    auto r = box.Apply(blob, o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(r->blob_digest.has_value());
    EXPECT_EQ(r->diff_id, Digest::Sha256Of(tar));
    EXPECT_EQ(r->compressed_size, static_cast<int64_t>(blob.size()));
  }
  {
    Sandbox box;
    ApplyOptions o = Unprivileged(WhiteoutMode::kOverlay, Compression::kGzip);
    o.hash_blob = false;
    o.expected_blob_digest = other;
    o.expected_diff_id = Digest::Sha256Of("another tar");
    auto r = box.Apply(blob, o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kDataLoss);
    EXPECT_NE(r.error().message.find("apply layer " + other.str() + ": diffID mismatch"),
              std::string::npos)
        << r.error().message;
  }
  {
    // Uncompressed: its one hash is its digest and its diffID, so the
    // blob digest is still known, and checked.
    Sandbox box;
    ApplyOptions o = Unprivileged(WhiteoutMode::kOverlay, Compression::kNone);
    o.hash_blob = false;
    o.expected_blob_digest = other;
    auto r = box.Apply(tar, o);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("blob digest mismatch"), std::string::npos)
        << r.error().message;
  }
}

TEST(UnpackDigestTest, Sha512ExpectationIsRefused) {
  auto d = Digest::Parse("sha512:" + std::string(128, 'a'));
  ASSERT_TRUE(d);
  ApplyOptions o = Unprivileged();
  o.expected_diff_id = *d;
  Sandbox box;
  auto r = box.Apply(Tar({File("a", "x")}), o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
}

TEST(UnpackStreamTest, FdSourceReadsAFile) {
  Sandbox box;
  const std::string blob = Blob({File("f", "from fd")}, fixtures::Compression::kGzip);
  const auto path = box.dir() / "blob";
  ASSERT_TRUE(common::AtomicWriteFile(path, blob));
  auto fd = common::Open(path.string(), O_RDONLY);
  ASSERT_TRUE(fd);
  FdSource src(fd->get());
  auto r = ApplyLayer(src, box.root_fd(), Unprivileged(WhiteoutMode::kOverlay, Compression::kGzip));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->blob_digest, Digest::Sha256Of(blob));
  EXPECT_EQ(ReadAll(box.root() / "f"), "from fd");
  std::filesystem::remove(path);
}

// Fails (or raises `cancel`) once `fail_after` bytes have been served.
class FailingSource final : public ByteSource {
 public:
  FailingSource(std::string data, size_t fail_after, std::atomic<bool>* cancel = nullptr)
      : data_(std::move(data)), fail_after_(fail_after), cancel_(cancel) {}
  common::Result<size_t> Read(std::span<std::byte> buf) override {
    if (pos_ >= fail_after_) {
      if (cancel_ == nullptr)
        return common::MakeError(Errc::kUnavailable, "read blob: connection reset by peer");
      cancel_->store(true);
    }
    size_t n = std::min({buf.size(), size_t{4096}, data_.size() - pos_});
    std::memcpy(buf.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  size_t fail_after_;
  std::atomic<bool>* cancel_;
  size_t pos_ = 0;
};

class UnpackPipelineTest : public ::testing::TestWithParam<bool> {
 protected:
  ApplyOptions Options() const {
    ApplyOptions o = Unprivileged(WhiteoutMode::kOverlay, Compression::kGzip);
    o.decode_thread = GetParam();
    return o;
  }
};

TEST_P(UnpackPipelineTest, SourceErrorIsReportedAsItself) {
  const std::string blob =
      Blob({File("a", Noise(4 << 20, 8)), File("b", "b")}, fixtures::Compression::kGzip);
  Sandbox box;
  FailingSource src(blob, blob.size() / 2);
  auto r = ApplyLayer(src, box.root_fd(), Options());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kUnavailable) << r.error().message;
  EXPECT_NE(r.error().message.find("connection reset by peer"), std::string::npos)
      << r.error().message;
}

TEST_P(UnpackPipelineTest, CancelDuringTheStreamStops) {
  const std::string blob =
      Blob({File("a", Noise(4 << 20, 9)), File("b", "b")}, fixtures::Compression::kGzip);
  std::atomic<bool> cancel{false};
  Sandbox box;
  FailingSource src(blob, blob.size() / 3, &cancel);
  ApplyOptions o = Options();
  o.cancel = &cancel;
  auto r = ApplyLayer(src, box.root_fd(), o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kCancelled) << r.error().message;
}

TEST_P(UnpackPipelineTest, EarlyEntryErrorStopsTheDecoderPromptly) {
  const std::string blob = Blob({File("../escape", "x"), File("big", Noise(16 << 20, 10))},
                                fixtures::Compression::kGzip);
  Sandbox box;
  testing::ChunkedSource src(blob, 64 << 10);
  auto r = ApplyLayer(src, box.root_fd(), Options());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("path escapes the root"), std::string::npos);
  // The decoder stopped a few blocks ahead instead of reading everything.
  EXPECT_LT(src.reads(), blob.size() / (64 << 10) / 2);
  EXPECT_TRUE(box.Untouched());
}

INSTANTIATE_TEST_SUITE_P(Modes, UnpackPipelineTest, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "thread" : "inline"; });

TEST(UnpackStreamTest, CancelStopsWithCancelled) {
  std::atomic<bool> cancel{true};
  ApplyOptions o = Unprivileged();
  o.cancel = &cancel;
  Sandbox box;
  auto r = box.Apply(Tar({File("a", "x")}), o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kCancelled) << r.error().message;
}

}  // namespace
}  // namespace unpack
