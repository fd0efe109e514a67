#pragma once
// The regular-file entries of an image archive (a docker save or an OCI
// layout tar, not a layer), each readable by pread: name → {fd, offset,
// size, sha256 when known}. Two ways to get them:
//
// - OpenFile: a seekable archive file. Its tar headers are read once
//   (archive/tar_index.h); every entry is a range of the one file, its
//   digest unknown until someone hashes it. Nothing is copied.
// - ReadStream: an archive read once from a pipe (`docker save x | gantry
//   load`). Each entry's body is written, as it goes by, into an unnamed
//   store file (store::UnnamedIngest, hashed while written), so its digest
//   is known; entries of up to kSmallEntry bytes share one such file. Only
//   the entries' bytes are held on disk, never the whole archive twice in
//   memory: the walk needs one buffer. CommitEntry then gives an entry a
//   name in the content store without copying it (a link), so that a pull
//   of the image finds its blobs present. Until then the store is as it
//   was: a killed or failed read leaves nothing behind.
//
// Entry names are normalised and checked by the tar walker ("./a" → "a"; a
// `..` or absolute name is InvalidArgument); a later entry of a name
// replaces an earlier one, as tar extraction does.
//
// Errors name the archive by what() ("archive `F` …", or "archive
// `standard input` …"), and the entry when there is one.
// Thread-safety: after it is made, an ArchiveContents may be read from
// several threads at once (pread); CommitEntry from one thread.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "common/fd.h"
#include "registry/client.h"
#include "registry/source.h"
#include "store/content_store.h"

namespace archives {

struct ContentEntry {
  std::string name;  // normalised
  int fd = -1;       // owned by the ArchiveContents; shared by entries
  int64_t offset = 0;
  int64_t size = 0;
  std::optional<common::Digest> sha256;  // known for a streamed archive
};

class ArchiveContents {
 public:
  // Entries of at most this many bytes share one file when streamed.
  static constexpr int64_t kSmallEntry = 64 << 10;

  // Errors: NotFound (no file); the tar walker's.
  [[nodiscard]] static common::Result<std::shared_ptr<ArchiveContents>> OpenFile(
      const std::filesystem::path& path);
  // The same over an open regular file (`gantry load < FILE`), read from
  // offset 0; `what` names it in errors.
  [[nodiscard]] static common::Result<std::shared_ptr<ArchiveContents>> OpenFd(common::UniqueFd fd,
                                                                               std::string what);

  // Reads the archive from `fd` to its end marker; a gzip-compressed
  // archive (`docker save x | gzip`, which docker load accepts) is inflated
  // on the way, on a thread of its own. `what` names it in errors
  // ("standard input"); `content` holds the entries' files (it must
  // outlive the result); `cancel` (may be null) is polled between reads.
  // Errors: the tar walker's (DataLoss when truncated, InvalidArgument for
  // a bad header or an escaping name), Cancelled, the store's I/O errors;
  // the inflater's (DataLoss "decompress archive `W`: …" for corrupt gzip).
  [[nodiscard]] static common::Result<std::shared_ptr<ArchiveContents>> ReadStream(
      int fd, std::string what, store::ContentStore& content, const std::atomic<bool>* cancel);

  // True when the stream on `fd` starts as gzip does (its first byte,
  // left unread). Errors: from fstat, tee or recv.
  [[nodiscard]] static common::Result<bool> IsGzip(int fd);

  ArchiveContents(const ArchiveContents&) = delete;
  ArchiveContents& operator=(const ArchiveContents&) = delete;

  const std::string& what() const { return what_; }
  bool streamed() const { return content_ != nullptr; }
  const std::map<std::string, ContentEntry, std::less<>>& entries() const { return entries_; }

  const ContentEntry* Find(std::string_view name) const;
  bool Has(std::string_view name) const { return Find(name) != nullptr; }
  // The entry `name` ("./" prefixes ignored), or NotFound naming `role`
  // ("layer", "config").
  [[nodiscard]] common::Result<const ContentEntry*> Need(std::string_view name,
                                                         std::string_view role) const;

  // The whole body. Errors: InvalidArgument when over `max` bytes;
  // DataLoss when the file ends early; I/O errors.
  [[nodiscard]] common::Result<std::string> Read(const ContentEntry& e, size_t max) const;
  // The first min(size, e.size) bytes into `sink` (registry::StreamFileBlob).
  [[nodiscard]] common::Status Stream(const ContentEntry& e, int64_t size, registry::BlobSink& sink,
                                      const std::atomic<bool>* cancel) const;
  // Up to the first 4 bytes, to tell plain tar from gzip and zstd.
  std::string Head(const ContentEntry& e) const;
  // The sha256 state after the first `len` bytes.
  [[nodiscard]] common::Result<common::Sha256> HashPrefix(const ContentEntry& e, int64_t len) const;
  // The entry's sha256: the known one, else hashed from the file.
  [[nodiscard]] common::Result<common::Digest> DigestOf(const ContentEntry& e) const;

  // Gives a streamed entry its name in the content store, under its sha256
  // (store::UnnamedIngest::Commit: a link, no copy; a small entry is
  // written out on its own). Present already: success.
  // REQUIRES: streamed(); `e` one of entries().
  // Errors: the store's.
  [[nodiscard]] common::Status CommitEntry(const ContentEntry& e, store::Ingest::DirSync dir_sync);

 private:
  ArchiveContents() = default;

  std::string what_;
  std::map<std::string, ContentEntry, std::less<>> entries_;
  common::UniqueFd file_;                                             // OpenFile: the archive
  store::ContentStore* content_ = nullptr;                            // ReadStream: the store
  std::map<std::string, store::UnnamedIngest, std::less<>> ingests_;  // by entry name
  std::optional<store::UnnamedIngest> small_;  // the file small entries share
};

}  // namespace archives
