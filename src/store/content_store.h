#pragma once
// The content store: verified blobs named by digest, and the resumable
// ingest files they are written through.
//
//   <root>/content/blobs/sha256/<hex>      verified, fsynced, mode 0444
//   <root>/content/ingest/sha256-<hex>     partial download; flock-held by its writer
//
// A blob appears under its digest name only after its size and SHA-256
// have been verified and the file fsynced; the rename into blobs/ is the
// commit. Several threads and several processes may use one root at once:
// an ingest file's exclusive flock makes a second writer of the same digest
// wait for the first, and then find the committed blob (AlreadyExists)
// instead of downloading it again. See docs/store.md.
//
// Worked example (a layer download with resume):
//
//   ASSIGN_OR_RETURN(store::ContentStore cs, store::ContentStore::Open(root));
//   auto ing = cs.BeginIngest(desc.digest, desc.size, &cancelled);
//   if (!ing && ing.error().code == common::Errc::kAlreadyExists) return {};  // have it
//   if (!ing) return std::unexpected(ing.error());
//   // ask the server for bytes from ing->offset(); if it ignores Range:
//   //   TRY(ing->Restart());
//   for (each chunk) TRY(ing->Write(chunk));
//   TRY(ing->Commit());   // DataLoss (partial deleted) if the bytes were wrong
//
// Only sha256 content can be ingested (the Sha256 hasher is the only one);
// reading paths accept any valid Digest.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "common/fd.h"

namespace store {

class Ingest;
class UnnamedIngest;

// Thread-safety: every method may be called from any thread; the object
// holds only paths. Several processes may share one root.
class ContentStore {
 public:
  // Creates <root>/content/blobs/sha256 and <root>/content/ingest (0755) if
  // missing. Errors: from mkdir (PermissionDenied, FailedPrecondition when a
  // path component is not a directory, …).
  [[nodiscard]] static common::Result<ContentStore> Open(const std::filesystem::path& root);

  const std::filesystem::path& root() const { return root_; }

  // True when the committed blob exists.
  [[nodiscard]] bool Has(const common::Digest& digest) const;
  // Size of the committed blob. Errors: NotFound.
  [[nodiscard]] common::Result<int64_t> Size(const common::Digest& digest) const;
  // <root>/content/blobs/<algorithm>/<hex> (whether or not it exists).
  [[nodiscard]] std::filesystem::path BlobPath(const common::Digest& digest) const;
  // <root>/content/ingest/<algorithm>-<hex>.
  [[nodiscard]] std::filesystem::path IngestPath(const common::Digest& digest) const;
  // Opens the blob read-only. Errors: NotFound.
  [[nodiscard]] common::Result<common::UniqueFd> OpenBlob(const common::Digest& digest) const;
  // Reads a whole blob (manifests, configs) and verifies its digest.
  // Errors: NotFound; ResourceExhausted when larger than `max_size`;
  // DataLoss when the bytes no longer match the digest; Unimplemented for
  // non-sha256 digests.
  [[nodiscard]] common::Result<std::string> ReadBlob(const common::Digest& digest,
                                                     size_t max_size = 16 << 20) const;

  // Starts (or resumes) writing the blob `expected` of `expected_size`
  // bytes. Takes an exclusive flock on the ingest file, exclusive across
  // threads and processes; if another writer holds it, waits until it is
  // released. `cancel` may be null (the wait blocks in the kernel); when set
  // it is polled while waiting and the wait ends with Cancelled once it
  // reads true. An existing partial is re-hashed so the returned Ingest
  // continues from offset() with the right SHA-256 state; a partial longer
  // than `expected_size` is truncated to 0.
  // Errors: AlreadyExists when the blob is committed (also after waiting
  // for another writer that committed it); Cancelled; InvalidArgument when
  // expected_size < 0; Unimplemented for non-sha256 digests; I/O errors.
  [[nodiscard]] common::Result<Ingest> BeginIngest(const common::Digest& expected,
                                                   int64_t expected_size,
                                                   const std::atomic<bool>* cancel = nullptr);

  // Starts writing a blob whose digest is not known yet (an archive read
  // from a pipe: its entries are only named after they have been read). The
  // file is created with O_TMPFILE in content/ingest/: it has no name until
  // UnnamedIngest::Commit links it under its digest, so a process killed
  // before that leaves nothing behind, and nothing needs cleaning.
  // Errors: Unimplemented when the file system has no O_TMPFILE
  // (EOPNOTSUPP, EISDIR on old kernels); I/O errors.
  [[nodiscard]] common::Result<UnnamedIngest> BeginUnnamedIngest() const;

  // Writes a small blob held in memory (manifest, config) through an
  // ingest. Succeeds without writing when the blob is already present.
  // Errors: DataLoss when `data` does not match `expected`; as BeginIngest.
  [[nodiscard]] common::Status WriteBlob(const common::Digest& expected, std::string_view data,
                                         const std::atomic<bool>* cancel = nullptr);

  // Removes a committed blob. The directory is not fsynced (garbage
  // collection deletes many; a blob resurrected by a crash is harmless and
  // collected again). Errors: NotFound.
  [[nodiscard]] common::Status Delete(const common::Digest& digest);

  // Fsyncs blobs/sha256/: makes the names of blobs committed with
  // Ingest::DirSync::kDeferred durable. Errors: from fsync.
  [[nodiscard]] common::Status SyncBlobs();

  // Every committed blob, sorted. Names in blobs/ that are not valid digests
  // are skipped.
  [[nodiscard]] common::Result<std::vector<common::Digest>> List() const;

  // Removes ingest files that nobody holds a lock on and whose last write
  // is at least `min_age` old (leftovers of killed pulls), and empty ones
  // whatever their age (nothing to resume); younger partials stay for
  // resume. Returns the bytes freed (sum of file sizes).
  [[nodiscard]] common::Result<int64_t> CleanIngest(std::chrono::seconds min_age);

 private:
  explicit ContentStore(std::filesystem::path root);
  std::filesystem::path root_;
  std::filesystem::path blobs_dir_;
  std::filesystem::path ingest_dir_;
};

// One writer's hold on an ingest file. Move-only. The destructor releases
// the lock and keeps the partial file so a later BeginIngest resumes it;
// an empty partial (the fetch failed before its first byte: a 404, a
// refused connection) holds nothing to resume and is deleted instead, so
// a failed pull leaves no empty file behind.
// Thread-safety: none; one thread uses an Ingest at a time.
// After Commit, Abandon or a DataLoss from Commit the object is finished;
// further calls fail with FailedPrecondition (Abandon is a no-op).
class Ingest {
 public:
  static constexpr int64_t kWriteBehind = 4 << 20;

  Ingest(Ingest&&) noexcept = default;
  Ingest& operator=(Ingest&&) noexcept = default;
  Ingest(const Ingest&) = delete;
  Ingest& operator=(const Ingest&) = delete;
  ~Ingest();

  const common::Digest& digest() const { return expected_; }
  int64_t expected_size() const { return expected_size_; }
  // Bytes in the partial file and hashed so far.
  int64_t offset() const { return offset_; }
  // The SHA-256 of the offset() bytes written so far: the running hash
  // Commit checks (seeded from a resumed partial once, by BeginIngest), so
  // a reader of the same bytes can be checked without hashing them again.
  // The default (empty) digest once finished.
  [[nodiscard]] common::Digest written_digest() const;
  bool finished() const { return !fd_.valid(); }

  // Appends `data` and hashes it. Every kWriteBehind bytes, asks the kernel
  // to start writing the new range out (sync_file_range, not waiting), so
  // that Commit's fsync finds most of a large blob already on disk instead
  // of flushing it all at the end. Errors: DataLoss (nothing written) when
  // offset() + data.size() would exceed expected_size(); I/O errors (what
  // was written before the failure stays counted in offset()).
  [[nodiscard]] common::Status Write(std::span<const std::byte> data);
  [[nodiscard]] common::Status Write(std::string_view data);

  // Truncates the partial to 0 bytes and resets the hash, for a server
  // that ignored a Range request.
  [[nodiscard]] common::Status Restart();

  // Verifies the size and digest, fsyncs, makes the file read-only (0444),
  // renames it to the blob path and fsyncs blobs/<algorithm>/ (kNow).
  // kDeferred leaves that last fsync to one ContentStore::SyncBlobs() after
  // many commits (a pull's blobs): the blob is still verified and on disk
  // before it gets its name, but until SyncBlobs a crash may undo the
  // rename; the complete partial is then back in ingest/ and the next
  // BeginIngest resumes it at full size.
  // Errors: DataLoss naming the digest when the size or the digest is
  // wrong; the partial is then deleted so no wrong bytes survive. I/O
  // errors (fsync, rename): the complete partial is kept and a new
  // BeginIngest resumes it at full size, ready to Commit again.
  enum class DirSync { kNow, kDeferred };
  [[nodiscard]] common::Status Commit(DirSync dir_sync = DirSync::kNow);

  // Deletes the partial and releases the lock.
  void Abandon();

 private:
  friend class ContentStore;
  Ingest(common::UniqueFd fd, std::filesystem::path ingest_path, std::filesystem::path blob_path,
         common::Digest expected, int64_t expected_size, int64_t offset, common::Sha256 hash);
  [[nodiscard]] common::Status Finished(std::string_view op) const;

  common::UniqueFd fd_;
  std::filesystem::path ingest_path_;
  std::filesystem::path blob_path_;
  common::Digest expected_;
  int64_t expected_size_ = 0;
  int64_t offset_ = 0;
  int64_t writeback_from_ = 0;  // start of the range not yet handed to writeback
  common::Sha256 hash_;
};

// A blob being written before its digest is known (ContentStore::
// BeginUnnamedIngest): an anonymous file, hashed as it is written. Readers
// may pread it through fd() while it is written and after it is committed
// (the blob is the same inode). Move-only; the destructor closes the file,
// which the kernel then frees unless Commit linked it.
// Thread-safety: none for Write/Finish/Commit; concurrent preads on fd()
// are safe.
//
//   ASSIGN_OR_RETURN(store::UnnamedIngest ing, cs.BeginUnnamedIngest());
//   for (each chunk) TRY(ing.Write(chunk));
//   common::Digest d = ing.Finish();        // no more writes
//   if (d == wanted) TRY(ing.Commit(store::Ingest::DirSync::kDeferred));
//   TRY(cs.SyncBlobs());
class UnnamedIngest {
 public:
  UnnamedIngest(UnnamedIngest&&) noexcept = default;
  UnnamedIngest& operator=(UnnamedIngest&&) noexcept = default;
  UnnamedIngest(const UnnamedIngest&) = delete;
  UnnamedIngest& operator=(const UnnamedIngest&) = delete;
  ~UnnamedIngest() = default;

  // The file, for preads. Valid for the object's life.
  int fd() const { return fd_.get(); }
  // Bytes written so far.
  int64_t size() const { return size_; }

  // Appends `data` and hashes it, handing full ranges to writeback as
  // Ingest::Write does. Errors: FailedPrecondition after Finish; I/O errors
  // (ENOSPC: ResourceExhausted).
  [[nodiscard]] common::Status Write(std::span<const std::byte> data);

  // Ends the writes and returns the digest of every byte written. Calling
  // it again returns the same digest.
  const common::Digest& Finish();
  // The digest once Finish was called, else nullopt.
  const std::optional<common::Digest>& digest() const { return digest_; }

  // Finishes if needed, fsyncs the file, makes it read-only (0444) and links
  // it at the blob path of its digest (linkat of /proc/self/fd/N with
  // AT_SYMLINK_FOLLOW, as O_TMPFILE files are given a name). A blob already
  // there is success: another writer committed the same verified bytes,
  // and this file is left to be freed. kNow then fsyncs blobs/sha256/;
  // kDeferred leaves it to one ContentStore::SyncBlobs() (a crash before it
  // may lose the name, never expose wrong bytes). The object stays usable
  // for reads; a second Commit does nothing.
  // Errors: I/O errors (fsync, link); PermissionDenied when /proc is not
  // mounted (linkat of /proc/self/fd needs it).
  [[nodiscard]] common::Status Commit(Ingest::DirSync dir_sync = Ingest::DirSync::kNow);

 private:
  friend class ContentStore;
  UnnamedIngest(common::UniqueFd fd, std::filesystem::path blobs_dir);

  common::UniqueFd fd_;
  std::filesystem::path blobs_dir_;  // <root>/content/blobs/sha256
  int64_t size_ = 0;
  int64_t writeback_from_ = 0;
  common::Sha256 hash_;
  std::optional<common::Digest> digest_;
  bool committed_ = false;
};

}  // namespace store
