#pragma once
// Applying one OCI layer to a directory in a single streaming pass.
//
// The compressed bytes read from a ByteSource are hashed (the blob digest,
// unless the caller has them verified elsewhere: ApplyOptions::hash_blob),
// decompressed (gzip through ISA-L's igzip, zstd, or none), hashed again
// (the diffID), and extracted by a libarchive tar reader (tar formats only;
// no libarchive filters) into a directory, with OCI whiteouts translated
// for the chosen snapshot kind. Memory stays bounded by fixed buffers
// (kLayerBufferBytes below, whatever the layer size; docs/resources.md).
// By default the decoding and hashing run on a helper thread, overlapping
// the writes.
//
// Safety contract: no entry can create, change or follow anything outside
// the root directory, whatever the layer holds.
//  - Names are normalised ("./" prefixes and "." components dropped) and
//    rejected, never sanitised, when absolute, empty, or holding a ".."
//    component; over-long names and paths are rejected too.
//  - Parent directories are resolved inside the root as if it were "/"
//    (openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS|RESOLVE_NO_XDEV, or an
//    equivalent component walk when openat2 is unavailable): a symlinked
//    parent that a lower layer or this layer created is followed *within*
//    the root (usrmerge images write "lib/x" with lib -> usr/lib), and a
//    symlink pointing at "/" or "../../.." resolves to the root itself.
//    Missing parents are created as 0755 directories (containerd does the
//    same; in overlay mode the lower layers are not visible).
//  - The final component is never followed: an existing entry is removed
//    (recursively if it is a directory and the new entry is not) and the
//    new one created with O_CREAT|O_EXCL|O_NOFOLLOW, mkdirat, symlinkat...
//  - Hardlink targets go through the same checks, must already exist in
//    the directory (a tar hardlink names an earlier entry of the same tar),
//    and must be regular files or symlinks; the link never follows them.
//  - Nothing is mounted and no path is ever opened outside the root fd.
//  - An existing non-directory is never modified in place (always
//    unlinked and created anew), so a snapshot whose files are hardlinks
//    shared with another snapshot cannot change that other snapshot.
//
// Metadata: owner (privileged only, before the mode since chown clears
// setuid), mode incl. setuid/setgid/sticky, xattrs (PAX SCHILY.xattr and
// LIBARCHIVE.xattr; security.capability set last, after chown and data),
// atime/mtime. Directory modes and times are applied after all entries, in
// reverse order, so that creating children does not disturb them.
// xattrs named trusted.overlay.* or user.overlay.* are never taken from a
// layer (they would change how overlayfs reads the snapshot); they are
// skipped with a warning. Hardlink entries carry no metadata of their own.
// xattrs on symlinks, devices and fifos are skipped (debug log). Sparse
// files (GNU and pax sparse) keep their holes. Not applied: ACLs
// (SCHILY.acl.*), file flags (chattr), the data of a pax "hardlink with
// data" entry, and aufs hardlink directories (a hardlink into
// `.wh..wh.plnk` fails as not found).
//
// Unprivileged (ApplyOptions::privileged == false), like rootless
// containerd: no chown, char/block devices are skipped with a warning and
// counted in ApplyResult::skipped, xattrs other than user.* are skipped,
// and overlay opaque directories get user.overlay.opaque (the name the
// kernel reads with the `userxattr` mount option) instead of
// trusted.overlay.opaque. Overlay whiteouts (0/0 char devices) need
// CAP_MKNOD before Linux 5.8 and nothing since.
//
// Durability: nothing is fsynced here. The snapshotter that commits the
// directory accounts for that (snapshot/snapshotter.h: unsynced snapshots
// are synced later, or discarded after a crash of the machine).
//
// Open files: a small file handed to the file helpers stays open (or, when
// a helper creates it, its parent directory: one descriptor shared by the
// queued files of that directory) until a helper has finished it, so the
// files an apply holds open are bounded by
// count as well as by bytes: at most kFileQueueFiles per apply, and across
// all the applies of the process at most the capacity of an OpenFileBudget
// (by default the process's, sized from RLIMIT_NOFILE). Without a free slot
// the applier finishes the file itself instead of queueing it: an apply
// never waits for another one's files, and never fails for want of a slot.
// Besides those, one apply holds a handful of descriptors (the blob, the
// root, the cached parent directory, the file being created or a large file
// being written, a directory being opened, and one per directory level while
// it removes a tree that an entry replaces). docs/resources.md.
//
// Thread-safety: ApplyLayer may run concurrently on different directories;
// one call uses its ByteSource and directory exclusively. With
// ApplyOptions::decode_thread the ByteSource is read on a helper thread
// (never concurrently), and with ApplyOptions::file_thread small files are
// finished on ApplyOptions::file_threads others; ApplyLayer joins them all
// before returning, and every file it wrote is closed by then.

#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "common/digest.h"
#include "common/error.h"
#include "oci/compression.h"

namespace unpack {

// Memory of one apply. Every buffer between the blob file and the files
// written is one of these; none grows with the layer:
//  - the compressed look-ahead the decoders read from;
inline constexpr size_t kInputBufferBytes = 256u << 10;
//  - decoded blocks handed to libarchive (kDecodedBlocks of them with
//    ApplyOptions::decode_thread, where the decoder runs ahead; else one);
inline constexpr size_t kDecodedBlockBytes = 1u << 20;
inline constexpr size_t kDecodedBlocks = 4;
//  - the data of small files (up to kSmallFileBytes each) queued for the
//    file thread: at most kFileQueueBytes held, plus the one file being
//    read from the tar; larger files are written block by block as they
//    stream;
//    each of those files is open until it is finished, so at most
//    kFileQueueFiles of them are held (empty files weigh no bytes), and
//    fewer when the process's OpenFileBudget runs short;
inline constexpr size_t kSmallFileBytes = 1u << 20;
inline constexpr size_t kFileQueueBytes = 4u << 20;
// 1,024 rather than fewer: a pull of 100,000 files of 1-100 bytes took
// about 5% longer with 256, the producer waiting more often for room.
inline constexpr size_t kFileQueueFiles = 1024;
//  - the decoder's own state: about 100 KiB for gzip (ISA-L) or 40 KiB
//    (zlib), and for zstd the frame's window, which the frame header sets
//    (8 MiB at level 19, 128 MiB at most: frames that need more, made with
//    zstd --long=28 and up, are refused as corrupt).
inline constexpr size_t kZstdMaxWindowBytes = 128u << 20;
// The sum of the fixed buffers (the zstd window comes on top).
inline constexpr size_t kLayerBufferBytes =
    kInputBufferBytes + kDecodedBlocks * kDecodedBlockBytes + kFileQueueBytes + kSmallFileBytes;
// Not counted above, because they are metadata bounded by Limits rather
// than buffers: libarchive's header buffers (long names and pax headers)
// and one small record per directory whose mode and times are applied at
// the end.

enum class WhiteoutMode {
  // `.wh.NAME` becomes an overlay whiteout (char device 0/0 named NAME) and
  // `DIR/.wh..wh..opq` marks DIR opaque (xattr trusted.overlay.opaque=y);
  // the directory is later an overlay lowerdir. A directory that replaces a
  // whiteout of the same layer is marked opaque too, so that it hides the
  // lower directory exactly as it would in kNative mode.
  kOverlay,
  // The directory already holds a full copy of the parent layers:
  // `.wh.NAME` deletes NAME (recursively, never following symlinks), and
  // `DIR/.wh..wh..opq` removes from DIR everything that came from lower
  // layers; entries of this layer seen before the marker stay, wherever
  // the marker appears.
  kNative,
};
// In both modes no `.wh.` entry appears in the result; aufs metadata
// (`.wh..wh.plnk`, `.wh..wh.aufs`, ... and anything below them) is skipped.

// The gzip inflater. kIsal is ISA-L's igzip (several times faster than
// zlib); kZlib is the portable fallback, also used when the build has no
// ISA-L. Both accept multi-member gzip streams.
enum class GzipDecoder { kIsal, kZlib };

// A stream of bytes, read to the end once.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to buf.size() bytes; returns 0 only at the end of the stream.
  [[nodiscard]] virtual common::Result<size_t> Read(std::span<std::byte> buf) = 0;
};

// Reads a file descriptor (not owned) from its current offset; retries
// EINTR. Errors: mapped from errno.
class FdSource final : public ByteSource {
 public:
  explicit FdSource(int fd) : fd_(fd) {}
  [[nodiscard]] common::Result<size_t> Read(std::span<std::byte> buf) override;

 private:
  int fd_;
};

// Reads `size` bytes of `fd` (not owned) from `offset` with pread, then
// ends (0): a layer inside a larger file (an archive's entry). The file
// ending before that is DataLoss.
class FileRangeSource final : public ByteSource {
 public:
  FileRangeSource(int fd, int64_t offset, int64_t size)
      : fd_(fd), next_(offset), end_(offset + size) {}
  [[nodiscard]] common::Result<size_t> Read(std::span<std::byte> buf) override;

 private:
  int fd_;
  int64_t next_;
  int64_t end_;
};

// The decompressed stream of `src` (not owned; must outlive the result),
// decoded as ApplyLayer decodes a layer: the first bytes must be
// `compression`'s magic; gzip (igzip where built with ISA-L) may hold
// several members; zeros may follow the last member or frame. Not
// thread-safe: one reader. Errors: DataLoss for a magic mismatch, an empty
// stream, corrupt or truncated data; the errors of `src`.
[[nodiscard]] common::Result<std::unique_ptr<ByteSource>> Decompress(oci::Compression compression,
                                                                     ByteSource& src);

// The files that the file threads of all the applies of a process may
// hold open at once. RLIMIT_NOFILE counts a process's descriptors, and a
// process applies several layers at once (an image's layers in parallel,
// several pulls in `gantry serve`), so the budget is shared by them.
// Thread-safe; never blocks.
class OpenFileBudget {
 public:
  explicit OpenFileBudget(size_t capacity) : capacity_(capacity) {}
  OpenFileBudget(const OpenFileBudget&) = delete;
  OpenFileBudget& operator=(const OpenFileBudget&) = delete;

  // The process's budget: OpenFileBudgetFor(the soft RLIMIT_NOFILE) as it
  // is at the first call (gantry raises it at start-up, before any apply).
  static OpenFileBudget& ForProcess();

  // Takes a slot when one is free.
  [[nodiscard]] bool TryAcquire();
  // Gives back `n` slots taken by TryAcquire.
  void Release(size_t n = 1);

  size_t capacity() const { return capacity_; }
  size_t in_use() const { return in_use_.load(std::memory_order_relaxed); }
  size_t peak() const { return peak_.load(std::memory_order_relaxed); }  // most in use at once

 private:
  const size_t capacity_;
  std::atomic<size_t> in_use_{0};
  std::atomic<size_t> peak_{0};
};

// Descriptors kept out of any OpenFileBudget for the rest of the process:
// the store's database and locks, downloads in flight (a socket and a file
// each), gRPC connections, and the handful each apply holds besides its
// queued files (see "Open files" above), for up to 4 layers at once.
inline constexpr uint64_t kReservedOpenFiles = 64;
// The budget for a soft RLIMIT_NOFILE of `nofile`: what is left after
// reserving max(kReservedOpenFiles, nofile / 4) for the rest of the
// process; 0 at 64 and below (every file is then finished by its applier).
// RLIM_INFINITY counts as a very large limit.
[[nodiscard]] size_t OpenFileBudgetFor(uint64_t nofile);

struct Limits {
  int64_t max_entries = 500'000;
  int64_t max_total_bytes = 8LL << 30;  // apparent size of all regular files
  size_t max_path_length = 4096;        // normalised entry path, link targets
  size_t max_name_length = 255;         // one path component
};

struct ApplyOptions {
  oci::Compression compression = oci::Compression::kGzip;
  WhiteoutMode whiteouts = WhiteoutMode::kOverlay;
  Limits limits;
  // chown, mknod of char/block devices, trusted.* and security.* xattrs.
  // See the header comment for what happens without.
  bool privileged = (::geteuid() == 0);
  // Checked once the whole input has been read: a mismatch is DataLoss
  // naming both digests. The expected blob digest also names the layer in
  // error messages.
  std::optional<common::Digest> expected_diff_id;
  std::optional<common::Digest> expected_blob_digest;
  // false: the compressed bytes are not hashed (no blob digest is computed
  // or checked; expected_blob_digest only names the layer), for a caller
  // whose bytes are verified by someone else who hashes them anyway: the
  // content store's blob, verified before it got its name, or bytes the
  // store's ingest verifies before anything built from them is kept
  // (image::Unpack). The diffID is still computed and checked, so what is
  // applied is still the tar stream the image config names. An
  // uncompressed layer is hashed once either way (its digest is its
  // diffID).
  bool hash_blob = true;
  // Polled between entries and data blocks; when it becomes true the apply
  // stops with Cancelled.
  const std::atomic<bool>* cancel = nullptr;
  GzipDecoder gzip_decoder = GzipDecoder::kIsal;
  // Decompress and hash on a helper thread while this one writes files
  // (one pass still; the stages overlap). `in` is then read on that thread,
  // never concurrently with the caller. false keeps everything on the
  // calling thread.
  bool decode_thread = true;
  // Finish small regular files (write their data, owner, mode, xattrs,
  // times, close) on helper threads, while this one goes on with the next
  // entries in tar order. false keeps everything on the calling thread.
  bool file_thread = true;
  // How many such helpers. With more than one (and kOverlay whiteouts)
  // they also create the small files, each below the parent directory fd
  // this thread resolved inside the root; an entry that works on a name a
  // helper has yet to create (the same name again, a hardlink to it, a
  // whiteout) or removes anything waits for the helpers first. With one
  // (or kNative) every file is created on this thread.
  int file_threads = 2;
  // Tests only: the file helpers start nothing until this thread waits for
  // them (the latest order the bounds allow), to show that entries acting
  // on a file a helper has yet to create wait for it.
  bool hold_file_helpers = false;
  // The budget the files queued for the file thread are taken from;
  // nullptr: OpenFileBudget::ForProcess(). Not owned; must outlive the call.
  OpenFileBudget* open_files = nullptr;
  // false forces the portable component walk instead of openat2(2), as on
  // kernels before 5.6 or under seccomp filters that refuse it (tests).
  bool use_openat2 = true;
};

struct ApplyResult {
  // sha256 of the bytes read from `in`; nullopt when not computed (a
  // compressed layer applied with ApplyOptions::hash_blob false).
  std::optional<common::Digest> blob_digest;
  common::Digest diff_id;         // sha256 of the uncompressed tar stream
  int64_t compressed_size = 0;    // bytes read from `in`
  int64_t uncompressed_size = 0;  // bytes of the tar stream, incl. trailing bytes
  int64_t entries = 0;            // tar entries read (incl. whiteouts, skipped)
  int64_t skipped = 0;            // entries not materialised (see header)
  // The most small-file data held for the file thread at once: never more
  // than kFileQueueBytes (0 without ApplyOptions::file_thread).
  int64_t peak_file_queue_bytes = 0;
  // The most files held for the file thread at once (queued or being
  // finished, each open until then): never more than kFileQueueFiles, nor
  // than the budget's capacity.
  int64_t peak_file_queue_files = 0;
  // Small files the applier finished itself because the budget was used up.
  int64_t files_finished_inline = 0;
};

// Applies the layer read from `in` into the directory `root_fd` (an O_PATH
// or O_DIRECTORY fd of the snapshot's fs directory; not owned).
//
// The declared compression is checked against the magic bytes (gzip 1f 8b,
// zstd 28 b5 2f fd): a mismatch is DataLoss, e.g. "apply layer
// sha256:…: declared gzip but starts with zstd magic". `in` is read to its
// end: bytes after the tar's end-of-archive blocks are hashed into the
// diffID (at most 16 MiB of them: writers pad to 10 KiB, more is a
// decompression bomb), bytes after the last gzip member or zstd frame into
// the blob digest (they must be zeros). Concatenated gzip members and zstd
// frames are one stream. An empty tar stream is an empty layer.
//
// Errors, each message naming the layer and, for entry errors, the entry
// ("apply layer: entry `../../etc/passwd`: path escapes the root"):
//  - InvalidArgument: hostile or unsupported entries (escaping paths,
//    bad whiteouts, hardlinks to missing or non-file targets, symlink
//    loops, a file used as a directory, unsupported types), an expected
//    digest of an algorithm other than sha256;
//  - ResourceExhausted: a Limits bound, or ENOSPC/EMFILE from the system
//    (EMFILE only when the rest of the process leaves less than the
//    reserve of OpenFileBudgetFor: the queued files stay within it);
//  - DataLoss: bytes that are not what the declared compression says
//    (a magic mismatch, an empty compressed blob, a corrupt or truncated
//    gzip or zstd stream, a stream that is not a tar, an unreadable or
//    truncated tar), digest mismatch; one code for corrupt content
//    wherever it is detected;
//  - PermissionDenied: privileged operations that the kernel refused;
//  - Cancelled: `options.cancel` was set;
//  - others mapped from errno of the failing system call.
// On error the apply stops where it was: the directory holds part of the
// layer, and the caller (which applies into a fresh snapshot directory)
// removes it.
// REQUIRES: nothing else modifies the directory meanwhile; the process's
// LC_CTYPE is C/POSIX (gantry never calls setlocale) or UTF-8, since
// libarchive converts entry names to it (in the C locale it cannot, and
// keeps the raw bytes, which is what we want).
[[nodiscard]] common::Result<ApplyResult> ApplyLayer(ByteSource& in, int root_fd,
                                                     const ApplyOptions& options);

}  // namespace unpack
