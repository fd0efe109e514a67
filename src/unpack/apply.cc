// ApplyLayer: wires the byte pipeline to libarchive and the entry applier,
// then checks the digests.

#include "unpack/apply.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <algorithm>
#include <memory>

#include "common/log.h"
#include "unpack/decompress_internal.h"
#include "unpack/path_internal.h"
#include "unpack/tar_apply_internal.h"

namespace unpack {
namespace {

using common::Errc;
using common::MakeError;
using common::Result;

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchiveReader = std::unique_ptr<archive, ArchiveReadDeleter>;

// A reader of tar formats only (ustar, pax, GNU, v7): no filters, since
// the stream is already decompressed and hashed, and no other archive
// formats.
Result<ArchiveReader> NewTarReader() {
  ArchiveReader a(archive_read_new());
  if (!a) return MakeError(Errc::kResourceExhausted, "archive_read_new failed");
  if (archive_read_support_format_tar(a.get()) != ARCHIVE_OK ||
      archive_read_support_format_gnutar(a.get()) != ARCHIVE_OK)
    return MakeError(Errc::kInternal, "enable tar formats in libarchive");
  return a;
}

Result<ApplyResult> Apply(ByteSource& in, int root_fd, const ApplyOptions& options) {
  for (const auto* d : {&options.expected_blob_digest, &options.expected_diff_id})
    if (d->has_value() && (*d)->algorithm() != common::DigestAlgorithm::kSha256)
      return MakeError(Errc::kInvalidArgument, "unsupported digest algorithm `" +
                                                   std::string((*d)->algorithm_name()) + "`");

  internal::Resolver resolver(root_fd, options.use_openat2);
  TRY(resolver.Init());
  // An uncompressed layer's bytes are its tar stream: hashed once, as the
  // stream, its digest and its diffID are the same.
  const bool plain = options.compression == oci::Compression::kNone;
  const bool hash_compressed = !plain && options.hash_blob;
  internal::HashingSource compressed(in, hash_compressed);
  ASSIGN_OR_RETURN(std::unique_ptr<ByteSource> decoded,
                   internal::OpenDecoder(options.compression, options.gzip_decoder, compressed));
  internal::TarInput input(*decoded, options.cancel, options.decode_thread);
  internal::Applier applier(resolver, input, options);

  // Made before the first block is decoded: its first use loads libarchive
  // (lazylib) while the decoder thread inflates that block.
  ASSIGN_OR_RETURN(ArchiveReader a, NewTarReader());
  // An empty stream is an empty layer (Go's archive/tar agrees); libarchive
  // would call it an unrecognised format.
  ASSIGN_OR_RETURN(bool has_data, input.Prime());
  if (has_data) {
    if (archive_read_open(a.get(), &input, nullptr, &internal::TarInput::ReadCallback, nullptr) !=
        ARCHIVE_OK)
      return std::unexpected(applier.ArchiveError(a.get(), "read tar"));
    for (;;) {
      archive_entry* entry = nullptr;
      int r = archive_read_next_header(a.get(), &entry);
      if (r == ARCHIVE_EOF) break;
      if (r == ARCHIVE_WARN) {
        const char* msg = archive_error_string(a.get());
        LOG(Debug) << "tar warning" << common::Kv("warning", msg != nullptr ? msg : "");
      } else if (r != ARCHIVE_OK) {
        return std::unexpected(applier.ArchiveError(a.get(), "read tar"));
      }
      TRY(applier.Apply(a.get(), entry));
    }
  }
  // The digests cover every byte: what follows the tar's end, and what
  // follows the compressed stream.
  TRY(input.Drain());

  ApplyResult result;
  result.compressed_size = compressed.size();
  result.uncompressed_size = input.size();
  result.diff_id = input.Finish();
  if (plain) {
    result.blob_digest = result.diff_id;
  } else if (hash_compressed) {
    result.blob_digest = compressed.Finish();
  }
  if (options.expected_blob_digest && result.blob_digest &&
      *options.expected_blob_digest != *result.blob_digest)
    return MakeError(Errc::kDataLoss, "blob digest mismatch: expected " +
                                          options.expected_blob_digest->str() + ", got " +
                                          result.blob_digest->str());
  if (options.expected_diff_id && *options.expected_diff_id != result.diff_id)
    return MakeError(Errc::kDataLoss, "diffID mismatch: expected " +
                                          options.expected_diff_id->str() + ", got " +
                                          result.diff_id.str());
  TRY(applier.Finish());
  result.entries = applier.entries();
  result.skipped = applier.skipped();
  const internal::FileFinisher::Stats queue = applier.file_queue_stats();
  result.peak_file_queue_bytes = static_cast<int64_t>(queue.peak_bytes);
  result.peak_file_queue_files = static_cast<int64_t>(queue.peak_files);
  result.files_finished_inline = static_cast<int64_t>(queue.finished_inline);
  return result;
}

}  // namespace

common::Result<size_t> FdSource::Read(std::span<std::byte> buf) {
  for (;;) {
    ssize_t n = ::read(fd_, buf.data(), buf.size());
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return common::ErrnoError("read layer");
  }
}

common::Result<std::unique_ptr<ByteSource>> Decompress(oci::Compression compression,
                                                       ByteSource& src) {
  return internal::OpenDecoder(compression, GzipDecoder::kIsal, src);
}

common::Result<size_t> FileRangeSource::Read(std::span<std::byte> buf) {
  const size_t want =
      static_cast<size_t>(std::min<int64_t>(end_ - next_, static_cast<int64_t>(buf.size())));
  if (want == 0) return 0;
  for (;;) {
    ssize_t n = ::pread(fd_, buf.data(), want, next_);
    if (n > 0) {
      next_ += n;
      return static_cast<size_t>(n);
    }
    if (n == 0)
      return MakeError(Errc::kDataLoss, "read layer: the file ends " +
                                            std::to_string(end_ - next_) + " bytes early");
    if (errno != EINTR) return common::ErrnoError("read layer");
  }
}

common::Result<ApplyResult> ApplyLayer(ByteSource& in, int root_fd, const ApplyOptions& options) {
  std::string context = "apply layer";
  if (options.expected_blob_digest) context += " " + options.expected_blob_digest->str();
  auto r = Apply(in, root_fd, options);
  if (!r) return std::unexpected(std::move(r.error()).Wrap(context));
  return r;
}

}  // namespace unpack
