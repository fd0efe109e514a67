// Tar entries to file-system objects: files (incl. sparse), directories,
// symlinks, hardlinks, devices and fifos, with their metadata.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"
#include "unpack/tar_apply_internal.h"

namespace unpack::internal {
namespace {

using common::Errc;
using common::ErrnoError;
using common::Kv;
using common::MakeError;
using common::Result;
using common::Status;
using common::UniqueFd;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The components of `dir` ("a/b/c"), for the whiteout-name checks.
template <class F>
bool AnyComponent(std::string_view dir, F&& pred) {
  size_t i = 0;
  while (i < dir.size()) {
    size_t j = dir.find('/', i);
    if (j == std::string_view::npos) j = dir.size();
    if (pred(dir.substr(i, j - i))) return true;
    i = j + 1;
  }
  return false;
}

void EntryTimes(archive_entry* e, struct timespec times[2]) {
  if (archive_entry_mtime_is_set(e)) {
    times[1].tv_sec = archive_entry_mtime(e);
    times[1].tv_nsec = archive_entry_mtime_nsec(e);
  } else {
    times[1].tv_sec = 0;
    times[1].tv_nsec = UTIME_OMIT;
  }
  if (archive_entry_atime_is_set(e)) {
    times[0].tv_sec = archive_entry_atime(e);
    times[0].tv_nsec = archive_entry_atime_nsec(e);
  } else {
    times[0] = times[1];
  }
}

mode_t EntryPerm(archive_entry* e) { return static_cast<mode_t>(archive_entry_perm(e)) & 07777; }

}  // namespace

bool XattrAllowed(std::string_view name, bool privileged, std::string_view* reason) {
  if (name.empty()) {
    *reason = "empty name";
    return false;
  }
  if (StartsWith(name, "trusted.overlay.") || StartsWith(name, "user.overlay.")) {
    *reason = "overlayfs attributes are never taken from a layer";
    return false;
  }
  if (!privileged && !StartsWith(name, "user.")) {
    *reason = "needs privileges";
    return false;
  }
  return true;
}

Status Applier::CheckCancel() const {
  if (options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed))
    return MakeError(Errc::kCancelled, "cancelled");
  return {};
}

common::Error Applier::ArchiveError(archive* a, std::string_view action) {
  if (auto e = input_.TakeError()) return *std::move(e);
  const char* msg = archive_error_string(a);
  const int err = archive_errno(a);
  common::Error out;
  out.code = err == ENOMEM ? Errc::kResourceExhausted : Errc::kDataLoss;
  out.message = std::string(action) + ": " + (msg != nullptr ? msg : "malformed tar");
  return out;
}

// ---- entry dispatch ---------------------------------------------------------

Status Applier::Apply(archive* a, archive_entry* e) {
  TRY(CheckCancel());
  const char* p = archive_entry_pathname(e);
  const std::string_view raw = p != nullptr ? p : "";
  Status st = ++entries_ > options_.limits.max_entries
                  ? MakeError(Errc::kResourceExhausted,
                              "too many entries (limit " +
                                  std::to_string(options_.limits.max_entries) + ")")
                  : ApplyEntry(a, e, raw);
  if (!st && finisher_failed_) return st;
  if (!st) return std::unexpected(std::move(st.error()).Wrap("entry `" + DisplayPath(raw) + "`"));
  return {};
}

Status Applier::ApplyEntry(archive* a, archive_entry* e, std::string_view raw) {
  ASSIGN_OR_RETURN(const std::string path, NormalizePath(raw, options_.limits));
  const bool is_hardlink = archive_entry_hardlink(e) != nullptr;
  const auto type = archive_entry_filetype(e);
  if (path.empty()) {
    if (type != AE_IFDIR || is_hardlink)
      return MakeError(Errc::kInvalidArgument, "the root can only be a directory");
    return ApplyRootDir(e);
  }
  auto [dir, base] = SplitLast(path);

  // aufs keeps its hardlink and metadata directories under `.wh..wh.*`;
  // they are not part of the image. Any other `.wh.` name is a whiteout
  // and cannot be a directory to write into.
  if (AnyComponent(dir, [](std::string_view c) { return StartsWith(c, ".wh..wh."); })) {
    ++skipped_;
    return {};
  }
  if (AnyComponent(dir, [](std::string_view c) { return StartsWith(c, ".wh."); }))
    return MakeError(Errc::kInvalidArgument, "a whiteout name is used as a directory");
  if (StartsWith(base, ".wh..wh.")) {
    if (base == ".wh..wh..opq") return ApplyOpaque(dir);
    ++skipped_;
    return {};
  }
  if (StartsWith(base, ".wh.")) {
    std::string_view target = base.substr(4);
    if (target.empty() || target == "." || target == "..")
      return MakeError(Errc::kInvalidArgument, "invalid whiteout of `" + DisplayPath(target) + "`");
    return ApplyWhiteout(dir, std::string(target));
  }

  const std::string name(base);
  if (is_hardlink) return ApplyHardlink(e, dir, name);
  switch (type) {
    case AE_IFREG:
      return ApplyFile(a, e, dir, name);
    case AE_IFDIR:
      return ApplyDir(e, path, dir, name);
    case AE_IFLNK:
      return ApplySymlink(e, dir, name);
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
      return ApplySpecial(e, dir, name);
    default: {
      char buf[16];
      std::snprintf(buf, sizeof buf, "%o", static_cast<unsigned>(type));
      return MakeError(Errc::kInvalidArgument, std::string("unsupported entry type 0") + buf);
    }
  }
}

// ---- regular files --------------------------------------------------------------

Status Applier::ApplyFile(archive* a, archive_entry* e, std::string_view dir,
                          const std::string& name) {
  const int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
  if (size < 0) return MakeError(Errc::kDataLoss, "negative size");  // a corrupt header
  if (size > options_.limits.max_total_bytes - total_bytes_)
    return MakeError(Errc::kResourceExhausted, "files of the layer exceed the size limit (" +
                                                   std::to_string(options_.limits.max_total_bytes) +
                                                   " bytes)");
  total_bytes_ += size;

  ASSIGN_OR_RETURN(int pfd, Parent(dir));
  TRY(Settle(pfd, name));
  const bool later =
      size <= kFinisherMaxFile && archive_entry_sparse_count(e) == 0 && options_.file_thread;
  // A helper creates only a name that does not exist (what is there is
  // replaced here, in order), so a name it has yet to create is missing
  // until it does: Parent() and Settle() see that.
  struct stat existing {};
  if (later && create_on_helpers() &&
      ::fstatat(pfd, name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
    if (const ino_t ino = ParentIno(pfd); ino != 0) {
      if (!parent_dup_) {
        int d = ::fcntl(pfd, F_DUPFD_CLOEXEC, 0);
        if (d < 0) return ErrnoError("dup parent directory");
        parent_dup_ = std::make_shared<const UniqueFd>(d);
      }
      return FinishLater(a, e, UniqueFd(), size, dir, name);
    }
  }
  UniqueFd file;
  for (int attempt = 0;; ++attempt) {
    // O_EXCL|O_NOFOLLOW: never open what is there, least of all a symlink.
    // Created with the entry's permission bits (the umask may take some;
    // setuid, setgid and sticky come after the chown): most files then need
    // no chmod (SetNewFileOwnerAndMode). The directory is private to this
    // apply until it ends, and this fd is writable whatever the mode.
    int fd = ::openat(pfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      EntryPerm(e) & 0777);
    if (fd >= 0) {
      file.reset(fd);
      break;
    }
    if (errno != EEXIST || attempt > 0) return ErrnoError("create file");
    TRY(RemoveExisting(pfd, name));
  }
  if (native()) {
    struct stat st {};
    if (::fstat(file.get(), &st) == 0) NoteInode(st.st_ino);
  }
  if (later) return FinishLater(a, e, std::move(file), size, dir, name);
  TRY(WriteData(a, file.get(), size));
  uid_t uid = 0;
  gid_t gid = 0;
  if (options_.privileged) {
    ASSIGN_OR_RETURN(auto owner, EntryOwner(e));
    std::tie(uid, gid) = owner;
  }
  TRY(SetNewFileOwnerAndMode(file.get(), options_.privileged, uid, gid, EntryPerm(e)));
  TRY(SetXattrs(file.get(), e));
  struct timespec times[2];
  EntryTimes(e, times);
  if (::futimens(file.get(), times) != 0) return ErrnoError("set times");
  return {};
}

Status Applier::FinishLater(archive* a, archive_entry* e, UniqueFd file, int64_t size,
                            std::string_view dir, const std::string& name) {
  FileFinisher::Job job;
  if (!file) {  // ApplyFile checked: a helper creates it below parent_dup_
    job.dir = parent_dup_;
    job.dir_ino = parent_ino_;
    job.name = name;
  }
  job.fd = std::move(file);
  job.size = size;
  // A small non-sparse file: its blocks come in order; should one not, it
  // lands at its offset all the same (a gap reads as zeros either way).
  TRY(ForEachDataBlock(a, size, [&](std::string_view block, int64_t off) -> Status {
    if (static_cast<size_t>(off) + block.size() > job.data.size())
      job.data.resize(off + block.size());
    std::memcpy(job.data.data() + off, block.data(), block.size());
    return {};
  }));
  if (options_.privileged) {
    ASSIGN_OR_RETURN(auto owner, EntryOwner(e));
    job.chown = true;
    job.uid = owner.first;
    job.gid = owner.second;
  }
  job.perm = EntryPerm(e);
  ASSIGN_OR_RETURN(job.xattrs, AllowedXattrs(e));
  EntryTimes(e, job.times);
  job.entry = DisplayPath(dir.empty() ? name : std::string(dir) + "/" + name);
  if (!finisher_) {
    OpenFileBudget* budget =
        options_.open_files != nullptr ? options_.open_files : &OpenFileBudget::ForProcess();
    finisher_ = std::make_unique<FileFinisher>(kFileQueueBytes, nullptr, kFileQueueFiles, budget,
                                               std::max(1, options_.file_threads));
    if (options_.hold_file_helpers) finisher_->HoldUntilWaited();
  }
  Status st = finisher_->Submit(std::move(job));
  // The error is an earlier file's, and names it: not this entry's.
  if (!st) finisher_failed_ = true;
  return st;
}

// libarchive hands out data blocks with their offsets; for sparse entries
// (GNU sparse, pax GNU.sparse.*) the gaps between blocks are holes, which
// pwrite at the offsets leaves unallocated, and a trailing hole is made by
// extending the file to its size.
Status Applier::WriteData(archive* a, int fd, int64_t size) {
  int64_t end = 0;
  TRY(ForEachDataBlock(a, size, [&](std::string_view block, int64_t off) -> Status {
    TRY(CheckCancel());
    TRY(common::PwriteAll(fd, block, off));
    end = std::max(end, off + static_cast<int64_t>(block.size()));
    return {};
  }));
  if (end < size && ::ftruncate(fd, size) != 0) return ErrnoError("extend to size");
  return {};
}

template <class F>
Status Applier::ForEachDataBlock(archive* a, int64_t size, F&& f) {
  for (;;) {
    const void* buf = nullptr;
    size_t len = 0;
    la_int64_t off = 0;
    int r = archive_read_data_block(a, &buf, &len, &off);
    if (r == ARCHIVE_EOF) return {};
    if (r < ARCHIVE_WARN) return std::unexpected(ArchiveError(a, "read data"));
    const auto n = static_cast<int64_t>(len);
    if (off < 0 || n > size || off > size - n)
      return MakeError(Errc::kDataLoss, "data beyond the entry's size");
    TRY(f(std::string_view(static_cast<const char*>(buf), len), static_cast<int64_t>(off)));
  }
}

// ---- metadata -------------------------------------------------------------------

Result<std::pair<uid_t, gid_t>> Applier::EntryOwner(archive_entry* e) {
  const la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
  // (uid_t)-1 would mean "leave unchanged"; larger ids do not exist.
  if (uid < 0 || gid < 0 || uid >= 0xffffffffLL || gid >= 0xffffffffLL)
    return MakeError(Errc::kInvalidArgument, "uid/gid out of range");
  return std::pair{static_cast<uid_t>(uid), static_cast<gid_t>(gid)};
}

Status Applier::Chown(archive_entry* e, const struct stat& now, int dirfd, const char* name) {
  ASSIGN_OR_RETURN(auto owner, EntryOwner(e));
  const auto [uid, gid] = owner;
  // A no-op chown still costs a journaled inode update: most entries are
  // root's, as is the applier that created them.
  if (now.st_uid == uid && now.st_gid == gid) return {};
  const int rc = name == nullptr ? ::fchown(dirfd, uid, gid)
                                 : ::fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return ErrnoError("chown to " + std::to_string(uid) + ":" + std::to_string(gid));
  return {};
}

Result<std::vector<std::pair<std::string, std::string>>> Applier::AllowedXattrs(archive_entry* e) {
  std::vector<std::pair<std::string, std::string>> out;
  if (archive_entry_xattr_reset(e) == 0) return out;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    const std::string_view n = name != nullptr ? name : "";
    std::string_view reason;
    if (!XattrAllowed(n, options_.privileged, &reason)) {
      if (StartsWith(n, "trusted.overlay.") || StartsWith(n, "user.overlay."))
        LOG(Warn) << "skipping xattr" << Kv("xattr", DisplayPath(n)) << Kv("reason", reason);
      else
        LOG(Debug) << "skipping xattr" << Kv("xattr", DisplayPath(n)) << Kv("reason", reason);
      continue;
    }
    out.emplace_back(std::string(n), std::string(static_cast<const char*>(value), size));
  }
  return out;
}

Status Applier::SetXattrs(int fd, archive_entry* e) {
  ASSIGN_OR_RETURN(auto xattrs, AllowedXattrs(e));
  for (const auto& [name, value] : xattrs) {
    if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) != 0) {
      if (errno == ENOTSUP || errno == EOPNOTSUPP) {
        LOG(Warn) << "xattr not supported by the file system, skipped"
                  << Kv("xattr", DisplayPath(name));
        continue;
      }
      return ErrnoError("set xattr `" + DisplayPath(name) + "`");
    }
  }
  return {};
}

// chown clears security.capability: owner first, then the xattrs.
Status Applier::SetDirMetadata(int fd, const struct stat& now, archive_entry* e) {
  if (options_.privileged) TRY(Chown(e, now, fd, nullptr));
  return SetXattrs(fd, e);
}

Status Applier::SetNameMetadata(int dirfd, const std::string& name, archive_entry* e,
                                bool set_mode) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return ErrnoError("stat");
  NoteInode(st.st_ino);
  if (options_.privileged) TRY(Chown(e, st, dirfd, name.c_str()));
  // Only for device nodes and fifos this entry has just created (never a
  // symlink); the directory is private to this apply, so the name is ours.
  if (set_mode && ::fchmodat(dirfd, name.c_str(), EntryPerm(e), 0) != 0) return ErrnoError("chmod");
  if (archive_entry_xattr_count(e) > 0)
    LOG(Debug) << "skipping xattrs of a non-regular file" << Kv("name", DisplayPath(name));
  struct timespec times[2];
  EntryTimes(e, times);
  if (::utimensat(dirfd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0)
    return ErrnoError("set times");
  return {};
}

void Applier::DeferDir(const std::string& path, const struct stat& st, archive_entry* e) {
  DirFixup f{path, st.st_dev, st.st_ino, EntryPerm(e), {}};
  EntryTimes(e, f.times);
  auto [it, inserted] = dir_fixup_index_.emplace(path, dir_fixups_.size());
  if (inserted)
    dir_fixups_.push_back(std::move(f));
  else
    dir_fixups_[it->second] = std::move(f);
}

FileFinisher::Stats Applier::file_queue_stats() {
  return finisher_ ? finisher_->stats() : FileFinisher::Stats{};
}

Status Applier::Finish() {
  if (finisher_) TRY(finisher_->Wait());
  for (auto it = dir_fixups_.rbegin(); it != dir_fixups_.rend(); ++it) {
    TRY(CheckCancel());
    const DirFixup& f = *it;
    auto where = resolver_.OpenDir(f.path, /*create=*/false);
    // Removed or replaced by a later entry: its metadata went with it.
    if (!where) {
      if (where.error().code == Errc::kNotFound || where.error().sys_errno == ENOTDIR) continue;
      return std::unexpected(
          std::move(where.error()).Wrap("directory `" + DisplayPath(f.path) + "`"));
    }
    int fd = ::openat(where->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("open directory `" + DisplayPath(f.path) + "`");
    UniqueFd dir(fd);
    struct stat st {};
    if (::fstat(dir.get(), &st) != 0) return ErrnoError("stat `" + DisplayPath(f.path) + "`");
    if (st.st_dev != f.dev || st.st_ino != f.ino) continue;
    if (::fchmod(dir.get(), f.mode) != 0) return ErrnoError("chmod `" + DisplayPath(f.path) + "`");
    if (::futimens(dir.get(), f.times) != 0)
      return ErrnoError("set times of `" + DisplayPath(f.path) + "`");
  }
  return {};
}

// ---- directories ------------------------------------------------------------

Status Applier::ApplyDir(archive_entry* e, const std::string& path, std::string_view dir,
                         const std::string& name) {
  ASSIGN_OR_RETURN(int pfd, Parent(dir));
  TRY(Settle(pfd, name));
  bool make_opaque = false;
  // Created owner-only; the entry's mode is applied at the end, so that a
  // read-only directory can still receive its children.
  if (::mkdirat(pfd, name.c_str(), 0700) != 0) {
    if (errno != EEXIST) return ErrnoError("create directory");
    struct stat st {};
    if (::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return ErrnoError("stat");
    if (!S_ISDIR(st.st_mode)) {
      // A directory replacing this layer's whiteout must hide the lower
      // directory, as whiteout-then-create does in native mode.
      make_opaque = !native() && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
      TRY(RemoveExisting(pfd, name));
      if (::mkdirat(pfd, name.c_str(), 0700) != 0) return ErrnoError("create directory");
    }
  }
  int fd = ::openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open directory");
  UniqueFd d(fd);
  struct stat st {};
  if (::fstat(d.get(), &st) != 0) return ErrnoError("stat");
  TRY(SetDirMetadata(d.get(), st, e));
  if (make_opaque) TRY(SetOpaqueXattr(d.get()));
  NoteInode(st.st_ino);
  DeferDir(path, st, e);
  return {};
}

Status Applier::ApplyRootDir(archive_entry* e) {
  ASSIGN_OR_RETURN(UniqueFd d, common::OpenAt(resolver_.root_fd(), ".", O_RDONLY | O_DIRECTORY));
  struct stat st {};
  if (::fstat(d.get(), &st) != 0) return ErrnoError("stat the root");
  TRY(SetDirMetadata(d.get(), st, e));
  DeferDir("", st, e);
  return {};
}

// ---- links and special files ----------------------------------------------------

Status Applier::ApplySymlink(archive_entry* e, std::string_view dir, const std::string& name) {
  const char* t = archive_entry_symlink(e);
  const std::string target = t != nullptr ? t : "";
  // The target is data, never resolved here: it can point anywhere, and
  // later entries resolving through it stay inside the root.
  if (target.empty()) return MakeError(Errc::kInvalidArgument, "symlink with an empty target");
  if (target.size() > options_.limits.max_path_length)
    return MakeError(Errc::kInvalidArgument, "symlink target too long");
  ASSIGN_OR_RETURN(int pfd, Parent(dir));
  TRY(Settle(pfd, name));
  for (int attempt = 0;; ++attempt) {
    if (::symlinkat(target.c_str(), pfd, name.c_str()) == 0) break;
    if (errno != EEXIST || attempt > 0) return ErrnoError("create symlink");
    TRY(RemoveExisting(pfd, name));
  }
  TRY(SetNameMetadata(pfd, name, e, /*set_mode=*/false));
  return {};
}

Status Applier::ApplyHardlink(archive_entry* e, std::string_view dir, const std::string& name) {
  const std::string raw_target = archive_entry_hardlink(e);
  const std::string what = "hardlink target `" + DisplayPath(raw_target) + "`";
  auto target = NormalizePath(raw_target, options_.limits);
  if (!target) return std::unexpected(std::move(target.error()).Wrap(what));
  if (target->empty()) return MakeError(Errc::kInvalidArgument, what + " is the root");
  if (AnyComponent(*target, [](std::string_view c) { return StartsWith(c, ".wh."); }))
    return MakeError(Errc::kInvalidArgument, what + " is a whiteout or aufs metadata");
  auto [tdir, tbase] = SplitLast(*target);
  const std::string tname(tbase);

  auto not_found = [&] {
    return MakeError(Errc::kInvalidArgument, what + " not found in this layer");
  };
  auto tfd = resolver_.OpenDir(tdir, /*create=*/false);
  if (!tfd) {
    if (tfd.error().code == Errc::kNotFound || tfd.error().sys_errno == ENOTDIR) return not_found();
    return std::unexpected(std::move(tfd.error()).Wrap(what));
  }
  if (finisher_ && finisher_->AnyPending()) {
    // The target may be a file a helper has yet to create.
    struct stat dst {};
    if (::fstat(tfd->get(), &dst) != 0 || finisher_->Pending(dst.st_ino, tname)) TRY(SettleAll());
  }
  struct stat tst {};
  if (::fstatat(tfd->get(), tname.c_str(), &tst, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return not_found();
    return ErrnoError(what);
  }
  if (!S_ISREG(tst.st_mode) && !S_ISLNK(tst.st_mode))
    return MakeError(Errc::kInvalidArgument, what + " is not a regular file or symlink");

  ASSIGN_OR_RETURN(int pfd, Parent(dir));
  TRY(Settle(pfd, name));
  for (int attempt = 0;; ++attempt) {
    // flags 0: a symlink target is linked itself, never followed.
    if (::linkat(tfd->get(), tname.c_str(), pfd, name.c_str(), 0) == 0) break;
    if (errno != EEXIST || attempt > 0) return ErrnoError("link to " + what);
    struct stat cur {};
    if (::fstatat(pfd, name.c_str(), &cur, AT_SYMLINK_NOFOLLOW) == 0 && cur.st_dev == tst.st_dev &&
        cur.st_ino == tst.st_ino)
      return {};  // already that file
    TRY(RemoveExisting(pfd, name));
  }
  NoteInode(tst.st_ino);
  return {};
}

Status Applier::ApplySpecial(archive_entry* e, std::string_view dir, const std::string& name) {
  const auto type = archive_entry_filetype(e);
  const bool device = type == AE_IFCHR || type == AE_IFBLK;
  if (device && !options_.privileged) {
    const std::string path = dir.empty() ? name : std::string(dir) + "/" + name;
    LOG(Warn) << "skipping device node: not privileged" << Kv("entry", DisplayPath(path));
    ++skipped_;
    return {};
  }
  const mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
  const dev_t rdev = device ? makedev(static_cast<unsigned>(archive_entry_rdevmajor(e)),
                                      static_cast<unsigned>(archive_entry_rdevminor(e)))
                            : 0;
  ASSIGN_OR_RETURN(int pfd, Parent(dir));
  TRY(Settle(pfd, name));
  for (int attempt = 0;; ++attempt) {
    if (::mknodat(pfd, name.c_str(), kind | 0600, rdev) == 0) break;
    if (errno == EPERM && device)
      return MakeError(Errc::kPermissionDenied,
                       "create device node: operation not permitted (apply unprivileged to "
                       "skip devices)");
    if (errno != EEXIST || attempt > 0)
      return ErrnoError(device ? "create device node" : "create fifo");
    TRY(RemoveExisting(pfd, name));
  }
  TRY(SetNameMetadata(pfd, name, e, /*set_mode=*/true));
  return {};
}

// ---- helpers --------------------------------------------------------------------

Status Applier::RemoveExisting(int dirfd, const std::string& name) {
  TRY(SettleAll());
  resolver_.Invalidate();
  parent_gen_ = UINT64_MAX;  // what is removed may be a directory the helpers have
  parent_dup_.reset();
  return RemoveAllAt(dirfd, name, resolver_.root_dev());
}

ino_t Applier::ParentIno(int pfd) {
  if (parent_gen_ != resolver_.generation()) {
    struct stat st {};
    parent_ino_ = ::fstat(pfd, &st) == 0 ? st.st_ino : 0;
    parent_gen_ = resolver_.generation();
    parent_dup_.reset();
  }
  return parent_ino_;
}

Result<int> Applier::Parent(std::string_view dir) {
  if (finisher_ && finisher_->AnyPending() && !resolver_.Cached(dir)) {
    // Missing components are created only once no file is pending: one
    // of them may be a name a helper has yet to create (a file used as a
    // directory fails as it does in tar order).
    if (auto probe = resolver_.ParentFd(dir, /*create=*/false); probe) return *probe;
    TRY(SettleAll());
  }
  return resolver_.ParentFd(dir, /*create=*/true);
}

Status Applier::Settle(int dirfd, const std::string& name) {
  if (!finisher_ || !finisher_->AnyPending()) return {};
  const ino_t ino = ParentIno(dirfd);
  if (ino == 0 || finisher_->Pending(ino, name)) return SettleAll();
  return {};
}

Status Applier::SettleAll() {
  if (!finisher_ || !finisher_->AnyPending()) return {};
  Status st = finisher_->Wait();
  if (!st) finisher_failed_ = true;
  return st;
}

void Applier::NoteInode(ino_t ino) {
  if (native()) layer_inodes_.insert(ino);
}

}  // namespace unpack::internal
