// Streaming decoders (gzip via ISA-L igzip or zlib, zstd, plain) and the
// hashing stages around them.

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "unpack/decompress_internal.h"

#if GANTRY_HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

namespace unpack::internal {
namespace {

using common::Errc;
using common::MakeError;
using common::Result;
using common::Status;

constexpr size_t kInputBufferSize = kInputBufferBytes;

constexpr std::byte kGzipMagic[] = {std::byte{0x1f}, std::byte{0x8b}};
constexpr std::byte kZstdMagic[] = {std::byte{0x28}, std::byte{0xb5}, std::byte{0x2f},
                                    std::byte{0xfd}};

// Compressed input with look-ahead: decoders consume from avail() and ask
// for more with Fill().
class InputBuffer {
 public:
  InputBuffer(ByteSource& src, size_t capacity) : src_(src), buf_(capacity) {}

  std::span<std::byte> avail() { return {buf_.data() + pos_, len_ - pos_}; }
  void Consume(size_t n) { pos_ += n; }
  bool eof() const { return eof_; }

  // Moves the unconsumed bytes to the front and reads more; returns the
  // number of bytes added (0 at the end of the source, or when full).
  Result<size_t> Fill() {
    if (pos_ > 0) {
      std::memmove(buf_.data(), buf_.data() + pos_, len_ - pos_);
      len_ -= pos_;
      pos_ = 0;
    }
    if (eof_ || len_ == buf_.size()) return 0;
    ASSIGN_OR_RETURN(size_t n, src_.Read(std::span(buf_).subspan(len_)));
    if (n == 0) eof_ = true;
    len_ += n;
    return n;
  }

  // Reads until at least `n` bytes are available or the source ends.
  Status Ensure(size_t n) {
    while (avail().size() < n && !eof_) TRY(Fill());
    return {};
  }

  ByteSource& source() { return src_; }

 private:
  ByteSource& src_;
  std::vector<std::byte> buf_;
  size_t pos_ = 0, len_ = 0;
  bool eof_ = false;
};

bool StartsWith(std::span<const std::byte> data, std::span<const std::byte> magic) {
  return data.size() >= magic.size() && std::equal(magic.begin(), magic.end(), data.begin());
}

// zstd frames may be preceded by skippable frames (magic 0x184D2A5?).
bool StartsWithZstd(std::span<const std::byte> data) {
  if (StartsWith(data, kZstdMagic)) return true;
  return data.size() >= 4 && (std::to_integer<unsigned>(data[0]) & 0xf0) == 0x50 &&
         data[1] == std::byte{0x2a} && data[2] == std::byte{0x4d} && data[3] == std::byte{0x18};
}

std::string_view Detect(std::span<const std::byte> data) {
  if (StartsWith(data, kGzipMagic)) return "gzip";
  if (StartsWithZstd(data)) return "zstd";
  return {};
}

// Consumes the rest of the source, which must be zeros (some tools pad
// blobs); anything else is not part of any stream we can decode.
Status ConsumeZeroTail(InputBuffer& in, std::string_view codec) {
  for (;;) {
    auto avail = in.avail();
    for (std::byte b : avail)
      if (b != std::byte{0})
        return MakeError(Errc::kDataLoss,
                         "trailing garbage after the " + std::string(codec) + " stream");
    in.Consume(avail.size());
    if (in.eof()) return {};
    TRY(in.Fill());
  }
}

std::unexpected<common::Error> Truncated(std::string_view codec) {
  return MakeError(Errc::kDataLoss, "truncated " + std::string(codec) + " stream");
}

uint32_t ClampU32(size_t n) { return static_cast<uint32_t>(std::min<size_t>(n, UINT32_MAX)); }

// ---- plain ----------------------------------------------------------------

class PlainDecoder final : public ByteSource {
 public:
  explicit PlainDecoder(std::unique_ptr<InputBuffer> in) : in_(std::move(in)) {}
  Result<size_t> Read(std::span<std::byte> out) override {
    auto avail = in_->avail();
    if (!avail.empty()) {
      size_t n = std::min(avail.size(), out.size());
      std::memcpy(out.data(), avail.data(), n);
      in_->Consume(n);
      return n;
    }
    if (in_->eof()) return 0;
    // The look-ahead is spent: read straight into the caller's buffer.
    ASSIGN_OR_RETURN(size_t n, in_->source().Read(out));
    if (n == 0) (void)in_->Fill();  // marks eof
    return n;
  }

 private:
  std::unique_ptr<InputBuffer> in_;
};

// ---- gzip (ISA-L) -------------------------------------------------------

#if GANTRY_HAVE_ISAL
const char* IsalErrorName(int rc) {
  switch (rc) {
    case ISAL_INVALID_BLOCK:
      return "invalid deflate block";
    case ISAL_INVALID_SYMBOL:
      return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK:
      return "invalid lookback distance";
    case ISAL_INVALID_WRAPPER:
      return "invalid gzip header";
    case ISAL_UNSUPPORTED_METHOD:
      return "unsupported compression method";
    case ISAL_INCORRECT_CHECKSUM:
      return "checksum mismatch";
    case ISAL_NEED_DICT:
      return "preset dictionary required";
    default:
      return "inflate error";
  }
}

class IsalGzipDecoder final : public ByteSource {
 public:
  explicit IsalGzipDecoder(std::unique_ptr<InputBuffer> in)
      : in_(std::move(in)), st_(std::make_unique<inflate_state>()) {
    isal_inflate_init(st_.get());
    st_->crc_flag = ISAL_GZIP;  // parse the gzip header, verify CRC and size
  }

  Result<size_t> Read(std::span<std::byte> out) override {
    size_t produced = 0;
    while (produced < out.size() && !done_) {
      if (in_->avail().empty() && !in_->eof()) TRY(in_->Fill());
      auto avail = in_->avail();
      st_->next_in = reinterpret_cast<uint8_t*>(avail.data());
      st_->avail_in = ClampU32(avail.size());
      const uint32_t room = ClampU32(out.size() - produced);
      st_->next_out = reinterpret_cast<uint8_t*>(out.data() + produced);
      st_->avail_out = room;
      const uint32_t given = st_->avail_in;
      int rc = isal_inflate(st_.get());
      const size_t consumed = given - st_->avail_in;
      const size_t made = room - st_->avail_out;
      in_->Consume(consumed);
      produced += made;
      if (rc < 0)
        return MakeError(Errc::kDataLoss, std::string("corrupt gzip stream: ") + IsalErrorName(rc));
      if (st_->block_state == ISAL_BLOCK_FINISH) {
        TRY(NextMember());
        continue;
      }
      if (consumed == 0 && made == 0) {
        if (in_->eof()) return Truncated("gzip");
        ASSIGN_OR_RETURN(size_t added, in_->Fill());
        if (added == 0 && !in_->eof())
          return MakeError(Errc::kInternal, "gzip: inflater made no progress");
      }
    }
    return produced;
  }

 private:
  // After a member's trailer: another member (gzip allows concatenation),
  // the end, or zero padding.
  Status NextMember() {
    TRY(in_->Ensure(2));
    auto avail = in_->avail();
    if (StartsWith(avail, kGzipMagic)) {
      isal_inflate_reset(st_.get());
      st_->crc_flag = ISAL_GZIP;
      return {};
    }
    TRY(ConsumeZeroTail(*in_, "gzip"));
    done_ = true;
    return {};
  }

  std::unique_ptr<InputBuffer> in_;
  std::unique_ptr<inflate_state> st_;  // ~100 KiB: keep it off the stack
  bool done_ = false;
};
#endif  // GANTRY_HAVE_ISAL

// ---- gzip (zlib) --------------------------------------------------------

class ZlibGzipDecoder final : public ByteSource {
 public:
  explicit ZlibGzipDecoder(std::unique_ptr<InputBuffer> in) : in_(std::move(in)) {}
  ~ZlibGzipDecoder() override {
    if (initialised_) inflateEnd(&zs_);
  }
  ZlibGzipDecoder(const ZlibGzipDecoder&) = delete;
  ZlibGzipDecoder& operator=(const ZlibGzipDecoder&) = delete;

  Status Init() {
    // 16 + MAX_WBITS: gzip wrapper only (no raw deflate, no zlib header).
    if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK)
      return MakeError(Errc::kInternal, "gzip: inflateInit2 failed");
    initialised_ = true;
    return {};
  }

  Result<size_t> Read(std::span<std::byte> out) override {
    size_t produced = 0;
    while (produced < out.size() && !done_) {
      if (in_->avail().empty() && !in_->eof()) TRY(in_->Fill());
      auto avail = in_->avail();
      zs_.next_in = reinterpret_cast<Bytef*>(avail.data());
      zs_.avail_in = static_cast<uInt>(std::min<size_t>(avail.size(), UINT_MAX));
      const uInt room = static_cast<uInt>(std::min<size_t>(out.size() - produced, UINT_MAX));
      zs_.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      zs_.avail_out = room;
      const uInt given = zs_.avail_in;
      int rc = inflate(&zs_, Z_NO_FLUSH);
      const size_t consumed = given - zs_.avail_in;
      const size_t made = room - zs_.avail_out;
      in_->Consume(consumed);
      produced += made;
      if (rc == Z_STREAM_END) {
        TRY(NextMember());
        continue;
      }
      if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR || rc == Z_STREAM_ERROR)
        return MakeError(Errc::kDataLoss, std::string("corrupt gzip stream: ") +
                                              (zs_.msg ? zs_.msg : "inflate error"));
      if (rc == Z_MEM_ERROR) return MakeError(Errc::kResourceExhausted, "gzip: out of memory");
      if (consumed == 0 && made == 0) {  // Z_BUF_ERROR: needs input
        if (in_->eof()) return Truncated("gzip");
        ASSIGN_OR_RETURN(size_t added, in_->Fill());
        if (added == 0 && !in_->eof())
          return MakeError(Errc::kInternal, "gzip: inflater made no progress");
      }
    }
    return produced;
  }

 private:
  Status NextMember() {
    TRY(in_->Ensure(2));
    if (StartsWith(in_->avail(), kGzipMagic)) {
      if (inflateReset(&zs_) != Z_OK)
        return MakeError(Errc::kInternal, "gzip: inflateReset failed");
      return {};
    }
    TRY(ConsumeZeroTail(*in_, "gzip"));
    done_ = true;
    return {};
  }

  std::unique_ptr<InputBuffer> in_;
  z_stream zs_{};
  bool initialised_ = false;
  bool done_ = false;
};

// ---- zstd -----------------------------------------------------------------

class ZstdDecoder final : public ByteSource {
 public:
  explicit ZstdDecoder(std::unique_ptr<InputBuffer> in)
      : in_(std::move(in)), ctx_(ZSTD_createDCtx()) {}
  ~ZstdDecoder() override { ZSTD_freeDCtx(ctx_); }
  ZstdDecoder(const ZstdDecoder&) = delete;
  ZstdDecoder& operator=(const ZstdDecoder&) = delete;

  Status Init() {
    if (ctx_ == nullptr) return MakeError(Errc::kResourceExhausted, "zstd: cannot create context");
    // The window limit bounds the decoder's memory (kZstdMaxWindowBytes,
    // libzstd's own default, set here so that it is ours to state); frames
    // that need more are refused by the decoder.
    static_assert(kZstdMaxWindowBytes == size_t{1} << 27);
    if (ZSTD_isError(ZSTD_DCtx_setParameter(ctx_, ZSTD_d_windowLogMax, 27)))
      return MakeError(Errc::kInternal, "zstd: cannot set the window limit");
    return {};
  }

  Result<size_t> Read(std::span<std::byte> out) override {
    size_t produced = 0;
    while (produced < out.size() && !done_) {
      if (in_->avail().empty() && !in_->eof()) TRY(in_->Fill());
      auto avail = in_->avail();
      if (frame_done_) {
        if (avail.empty() && in_->eof()) {
          done_ = true;
          break;
        }
        if (!avail.empty() && avail[0] == std::byte{0}) {
          TRY(ConsumeZeroTail(*in_, "zstd"));
          done_ = true;
          break;
        }
      }
      ZSTD_inBuffer ib{avail.data(), avail.size(), 0};
      ZSTD_outBuffer ob{out.data() + produced, out.size() - produced, 0};
      size_t rc = ZSTD_decompressStream(ctx_, &ob, &ib);
      if (ZSTD_isError(rc))
        return MakeError(Errc::kDataLoss,
                         std::string("corrupt zstd stream: ") + ZSTD_getErrorName(rc));
      in_->Consume(ib.pos);
      produced += ob.pos;
      frame_done_ = (rc == 0);
      if (ib.pos == 0 && ob.pos == 0 && !frame_done_) {
        if (in_->eof()) return Truncated("zstd");
        ASSIGN_OR_RETURN(size_t added, in_->Fill());
        if (added == 0 && !in_->eof())
          return MakeError(Errc::kInternal, "zstd: decoder made no progress");
      }
    }
    return produced;
  }

 private:
  std::unique_ptr<InputBuffer> in_;
  ZSTD_DCtx* ctx_;
  bool frame_done_ = false;
  bool done_ = false;
};

}  // namespace

// ---- public pieces ----------------------------------------------------------

Result<size_t> HashingSource::Read(std::span<std::byte> buf) {
  ASSIGN_OR_RETURN(size_t n, in_.Read(buf));
  if (n > buf.size()) return MakeError(Errc::kInternal, "byte source returned more than asked");
  if (hash_) sha_.Update(buf.first(n));
  size_ += static_cast<int64_t>(n);
  return n;
}

Result<std::unique_ptr<ByteSource>> OpenDecoder(oci::Compression declared, GzipDecoder gzip,
                                                ByteSource& src) {
  auto in = std::make_unique<InputBuffer>(src, kInputBufferSize);
  TRY(in->Ensure(4));
  const std::string_view found = Detect(in->avail());
  const std::string_view want = oci::CompressionName(declared);
  // A blob that is not what its media type says is corrupt content, like
  // a stream that fails to inflate or a tar that fails to parse: DataLoss
  // wherever it is noticed, so that every such layer gets one exit code.
  if (declared == oci::Compression::kNone) {
    if (!found.empty())
      return MakeError(Errc::kDataLoss,
                       "declared uncompressed but starts with " + std::string(found) + " magic");
    return std::unique_ptr<ByteSource>(std::make_unique<PlainDecoder>(std::move(in)));
  }
  if (found != want) {
    if (in->avail().empty())
      return MakeError(Errc::kDataLoss, "declared " + std::string(want) + " but is empty");
    return MakeError(Errc::kDataLoss, "declared " + std::string(want) + " but starts with " +
                                          (found.empty() ? std::string("no known magic")
                                                         : std::string(found) + " magic"));
  }
  if (declared == oci::Compression::kZstd) {
    auto d = std::make_unique<ZstdDecoder>(std::move(in));
    TRY(d->Init());
    return std::unique_ptr<ByteSource>(std::move(d));
  }
#if GANTRY_HAVE_ISAL
  if (gzip == GzipDecoder::kIsal)
    return std::unique_ptr<ByteSource>(std::make_unique<IsalGzipDecoder>(std::move(in)));
#else
  (void)gzip;
#endif
  auto d = std::make_unique<ZlibGzipDecoder>(std::move(in));
  TRY(d->Init());
  return std::unique_ptr<ByteSource>(std::move(d));
}

}  // namespace unpack::internal
