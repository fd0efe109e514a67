#pragma once
// The entry applier: turns libarchive entries into files, directories,
// links, devices and whiteouts below a root, with the safety rules of
// apply.h. tar_apply.cc holds entries and metadata, whiteout.cc whiteouts
// and opaque directories.

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "unpack/apply.h"
#include "unpack/decompress_internal.h"
#include "unpack/file_finisher_internal.h"
#include "unpack/path_internal.h"

namespace unpack::internal {

class Applier {
 public:
  // All references are borrowed and must outlive the Applier.
  Applier(Resolver& resolver, TarInput& input, const ApplyOptions& options)
      : resolver_(resolver), input_(input), options_(options) {}

  // Applies the entry libarchive just read (and reads its data). Errors
  // name the entry: "entry `a/b`: path escapes the root".
  [[nodiscard]] common::Status Apply(archive* a, archive_entry* e);

  // Waits for the files being finished on the helper thread, then applies
  // the deferred directory modes and times, deepest-last-seen first. Call
  // once after the last entry.
  [[nodiscard]] common::Status Finish();

  int64_t entries() const { return entries_; }
  int64_t skipped() const { return skipped_; }
  // The FileFinisher's (all zero when no file went to it).
  FileFinisher::Stats file_queue_stats();

  // Converts libarchive's error into ours, preferring the stream's own
  // error (corrupt gzip, cancellation) that libarchive only saw as EIO.
  common::Error ArchiveError(archive* a, std::string_view action);

 private:
  struct DirFixup {
    std::string path;  // normalised, "" for the root
    dev_t dev;
    ino_t ino;
    mode_t mode;
    struct timespec times[2];
  };

  common::Status ApplyEntry(archive* a, archive_entry* e, std::string_view raw);
  common::Status ApplyFile(archive* a, archive_entry* e, std::string_view dir,
                           const std::string& name);
  common::Status WriteData(archive* a, int fd, int64_t size);
  // Calls f(bytes, offset) for each data block of the current entry, after
  // checking the block lies within the entry's `size`.
  template <class F>
  common::Status ForEachDataBlock(archive* a, int64_t size, F&& f);
  // Reads the data of a small file and queues it, with its metadata, for
  // the FileFinisher.
  common::Status FinishLater(archive* a, archive_entry* e, common::UniqueFd file, int64_t size,
                             std::string_view dir, const std::string& name);
  common::Status ApplyDir(archive_entry* e, const std::string& path, std::string_view dir,
                          const std::string& name);
  common::Status ApplyRootDir(archive_entry* e);
  common::Status ApplySymlink(archive_entry* e, std::string_view dir, const std::string& name);
  common::Status ApplyHardlink(archive_entry* e, std::string_view dir, const std::string& name);
  common::Status ApplySpecial(archive_entry* e, std::string_view dir, const std::string& name);

  // Owner, then xattrs, of a directory through its open fd; its mode and
  // times come from Finish(). (Regular files: SetNewFileOwnerAndMode, the
  // xattrs, the times, in ApplyFile and the FileFinisher.)
  // `now`: the directory's stat (its owner before the chown).
  common::Status SetDirMetadata(int fd, const struct stat& now, archive_entry* e);
  // Owner (only if it differs: one fstatat first) and times of a
  // symlink/device/fifo this apply just created, by name, never following;
  // notes its inode (NoteInode).
  common::Status SetNameMetadata(int dirfd, const std::string& name, archive_entry* e,
                                 bool set_mode);
  common::Status SetXattrs(int fd, archive_entry* e);
  // The entry's xattrs this apply may set (skipped ones are logged).
  common::Result<std::vector<std::pair<std::string, std::string>>> AllowedXattrs(archive_entry* e);
  static common::Result<std::pair<uid_t, gid_t>> EntryOwner(archive_entry* e);
  // Gives the entry's owner to `name` below `dirfd` (never following), or to
  // `dirfd` itself when `name` is null, unless `now` (its stat) shows it
  // already has it.
  common::Status Chown(archive_entry* e, const struct stat& now, int dirfd, const char* name);
  void DeferDir(const std::string& path, const struct stat& st, archive_entry* e);

  // Removes whatever `name` in `dirfd` is (recursively for a directory)
  // and invalidates the resolver's cache; first waits for the files the
  // helpers still have to create (what is removed may hold them).
  common::Status RemoveExisting(int dirfd, const std::string& name);
  // Before this entry works on `name` in the directory `dirfd`: waits for
  // the file helpers when one of them still has to create that name
  // (FileFinisher::Pending), so that entries take effect in tar order.
  common::Status Settle(int dirfd, const std::string& name);
  // resolver_.ParentFd(dir, create): while files are pending, a
  // directory that is not all there is created only after the helpers are
  // done (a missing component may be a file one has yet to create).
  common::Result<int> Parent(std::string_view dir);
  // Waits for the file helpers when any file is still to be created.
  common::Status SettleAll();
  // The inode of `pfd`, the resolver's current ParentFd (cached per
  // resolver generation); 0 when fstat fails (no job then creates there).
  ino_t ParentIno(int pfd);
  // Whether small files are created on the file helpers (overlay only: a
  // native apply replaces lower files and records its inodes in order).
  bool create_on_helpers() const {
    return options_.file_thread && options_.file_threads > 1 && !native();
  }
  // Records an inode written by this layer (kNative opaque directories).
  void NoteInode(ino_t ino);

  // whiteout.cc
  common::Status ApplyWhiteout(std::string_view dir, const std::string& name);
  common::Status ApplyOpaque(std::string_view dir);
  common::Status SetOpaqueXattr(int dir_fd);
  // Removes from the directory `fd` what this layer did not write; returns
  // whether anything was kept.
  common::Result<bool> PruneLower(int fd);

  bool native() const { return options_.whiteouts == WhiteoutMode::kNative; }
  common::Status CheckCancel() const;

  Resolver& resolver_;
  TarInput& input_;
  const ApplyOptions& options_;
  int64_t entries_ = 0;
  int64_t skipped_ = 0;
  int64_t total_bytes_ = 0;
  std::vector<DirFixup> dir_fixups_;
  std::unordered_map<std::string, size_t> dir_fixup_index_;
  std::unordered_set<ino_t> layer_inodes_;  // kNative only
  // Regular files up to kSmallFileBytes are finished on a helper thread
  // (ApplyOptions::file_thread), at most kFileQueueBytes and
  // kFileQueueFiles held, within the OpenFileBudget (apply.h).
  static constexpr int64_t kFinisherMaxFile = kSmallFileBytes;
  std::unique_ptr<FileFinisher> finisher_;  // made with the first such file
  bool finisher_failed_ = false;            // its error (naming its file) is the apply's
  // The resolver's current parent directory as the helpers get it: its
  // inode and a dup shared by its jobs, for resolver generation parent_gen_.
  uint64_t parent_gen_ = UINT64_MAX;
  ino_t parent_ino_ = 0;
  std::shared_ptr<const common::UniqueFd> parent_dup_;
};

// Whether a setxattr `name` taken from a layer is acceptable; sets
// `*reason` when it is skipped instead.
bool XattrAllowed(std::string_view name, bool privileged, std::string_view* reason);

}  // namespace unpack::internal
