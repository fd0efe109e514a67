#pragma once
// The byte pipeline of one layer: compressed source -> hash (blob digest)
// -> decoder -> hash (diffID) -> libarchive's read callback.

#include <archive.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "unpack/apply.h"

namespace unpack::internal {

// Hashes and counts every byte read from `in` (not owned).
class HashingSource final : public ByteSource {
 public:
  // hash = false only counts: for an uncompressed layer, whose stream is
  // hashed once already as the tar stream (its diffID is its digest).
  explicit HashingSource(ByteSource& in, bool hash = true) : in_(in), hash_(hash) {}
  [[nodiscard]] common::Result<size_t> Read(std::span<std::byte> buf) override;
  int64_t size() const { return size_; }
  // REQUIRES: constructed with hash = true.
  [[nodiscard]] common::Digest Finish() { return sha_.Finish(); }

 private:
  ByteSource& in_;
  bool hash_;
  int64_t size_ = 0;
  common::Sha256 sha_;
};

// Returns the decompressed stream of `src` (not owned; must outlive the
// result). The declared compression is checked against the first bytes
// (see ApplyLayer). The stream's Read returns 0 once the compressed data
// has ended *and* `src` has been read to its end; trailing bytes after the
// last gzip member / zstd frame must be zeros. Errors: DataLoss for a
// magic mismatch or an empty compressed blob and for corrupt or truncated
// data, and the errors of `src`.
[[nodiscard]] common::Result<std::unique_ptr<ByteSource>> OpenDecoder(oci::Compression declared,
                                                                      GzipDecoder gzip,
                                                                      ByteSource& src);

// Feeds a decoded stream to libarchive and hashes it (the diffID).
//
// With `threaded`, a helper thread pulls the decoded stream (and so the
// compressed source, its hash and the decoder) into a few 1 MiB blocks
// while the caller's thread extracts the previous ones: inflating and
// hashing overlap with writing files. The source is then read on that
// thread, never concurrently with the caller.
//
// Keeps the first error of the stream so that the caller can report it
// instead of libarchive's generic "read callback failed". Not thread-safe:
// one caller thread.
class TarInput {
 public:
  TarInput(ByteSource& decoded, const std::atomic<bool>* cancel, bool threaded);
  // Stops the helper thread; waits for a Read in progress to return.
  ~TarInput();
  TarInput(const TarInput&) = delete;
  TarInput& operator=(const TarInput&) = delete;

  // Reads the first block; false when the stream is empty.
  [[nodiscard]] common::Result<bool> Prime();
  // archive_read_open's read callback; `client` is the TarInput.
  static la_ssize_t ReadCallback(archive* a, void* client, const void** buf);
  // Reads and hashes everything libarchive left unread (at most 16 MiB:
  // tar writers pad to 10 KiB; more is a decompression bomb), then stops
  // the helper thread. size() and Finish() are valid after it succeeded.
  [[nodiscard]] common::Status Drain();

  // The error that stopped the stream, if any (moved out).
  std::optional<common::Error> TakeError();
  int64_t size() const { return static_cast<int64_t>(sha_.size()); }
  [[nodiscard]] common::Digest Finish() { return sha_.Finish(); }

 private:
  // Allocated, not cleared: a page is first touched by the decoder writing
  // it (a small layer touches only what it fills, and no thread waits for
  // megabytes of zeros before the first byte is decoded).
  struct Block {
    std::unique_ptr<std::byte[]> data;
    size_t size = 0;
    std::span<std::byte> room() { return {data.get(), kDecodedBlockBytes}; }
    std::span<const std::byte> filled() const { return {data.get(), size}; }
  };

  bool cancelled() const;
  // The next block of the stream (size 0 at its end); the block stays
  // valid until the next call.
  common::Result<Block*> Next();
  common::Result<Block*> NextBlock();       // Next without hashing
  common::Result<size_t> Decode(Block& b);  // reads one block
  void Work();                              // the helper thread
  void Stop();

  ByteSource& decoded_;
  const std::atomic<bool>* cancel_;
  bool threaded_;
  std::vector<Block> blocks_;
  Block* current_ = nullptr;  // handed to libarchive
  bool primed_ = false;       // current_ was read by Prime, not yet handed out
  common::Sha256 sha_;        // the helper's when threaded; read after Stop()
  std::optional<common::Error> error_;
  bool first_decode_ = true;  // Decode's: the helper's, or the caller's when not threaded

  // Threaded mode; the fields below are guarded by mu_.
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Block*> free_, full_;
  bool stop_ = false;
  bool worker_done_ = false;
  std::optional<common::Error> worker_error_;
};

}  // namespace unpack::internal
