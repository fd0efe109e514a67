#include "store/content_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "common/fs.h"
#include "common/log.h"
#include "store/lock_internal.h"

namespace store {

using common::Digest;
using common::Errc;
using common::ErrnoError;
using common::MakeError;
using common::Result;
using common::Status;
using common::UniqueFd;

namespace {

constexpr size_t kRehashChunk = 1 << 20;

Status RequireSha256(const Digest& d, std::string_view op) {
  if (d.algorithm() != common::DigestAlgorithm::kSha256)
    return MakeError(Errc::kUnimplemented,
                     std::string(op) + " " + d.str() + ": only sha256 content is supported");
  return {};
}

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// Re-reads the first `size` bytes of a partial into `hash`, so that a
// resumed ingest continues the SHA-256 state (EVP contexts cannot be
// serialised portably). Returns the bytes actually hashed.
Result<int64_t> Rehash(int fd, int64_t size, common::Sha256& hash, const std::string& path) {
  std::vector<char> buf(kRehashChunk);
  int64_t done = 0;
  while (done < size) {
    size_t want = static_cast<size_t>(std::min<int64_t>(size - done, kRehashChunk));
    ssize_t n = ::pread(fd, buf.data(), want, done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read partial `" + path + "`");
    }
    if (n == 0) break;
    hash.Update(buf.data(), static_cast<size_t>(n));
    done += n;
  }
  return done;
}

}  // namespace

ContentStore::ContentStore(std::filesystem::path root)
    : root_(std::move(root)),
      blobs_dir_(root_ / "content" / "blobs"),
      ingest_dir_(root_ / "content" / "ingest") {}

Result<ContentStore> ContentStore::Open(const std::filesystem::path& root) {
  ContentStore cs(root);
  auto op = "open content store `" + root.string() + "`";
  if (auto st = common::MkdirAll(cs.blobs_dir_ / "sha256"); !st)
    return std::unexpected(std::move(st.error()).Wrap(op));
  if (auto st = common::MkdirAll(cs.ingest_dir_); !st)
    return std::unexpected(std::move(st.error()).Wrap(op));
  return cs;
}

std::filesystem::path ContentStore::BlobPath(const Digest& d) const {
  return blobs_dir_ / std::string(d.algorithm_name()) / d.hex();
}

std::filesystem::path ContentStore::IngestPath(const Digest& d) const {
  return ingest_dir_ / (std::string(d.algorithm_name()) + "-" + d.hex());
}

bool ContentStore::Has(const Digest& d) const {
  struct stat st {};
  return ::stat(BlobPath(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<int64_t> ContentStore::Size(const Digest& d) const {
  struct stat st {};
  if (::stat(BlobPath(d).c_str(), &st) != 0) return ErrnoError("stat blob " + d.str());
  return static_cast<int64_t>(st.st_size);
}

Result<UniqueFd> ContentStore::OpenBlob(const Digest& d) const {
  return common::Wrap(common::Open(BlobPath(d).string(), O_RDONLY | O_NOFOLLOW),
                      "open blob " + d.str());
}

Result<std::string> ContentStore::ReadBlob(const Digest& d, size_t max_size) const {
  std::string op = "read blob " + d.str();
  TRY(RequireSha256(d, "read blob"));
  ASSIGN_OR_RETURN(std::string data, common::Wrap(common::ReadFile(BlobPath(d), max_size), op));
  Digest got = Digest::Sha256Of(data);
  if (got != d)
    return MakeError(Errc::kDataLoss,
                     op + ": content has digest " + got.str() + "; the store is corrupt");
  return data;
}

Result<Ingest> ContentStore::BeginIngest(const Digest& expected, int64_t expected_size,
                                         const std::atomic<bool>* cancel) {
  std::string op = "ingest " + expected.str();
  TRY(RequireSha256(expected, "ingest"));
  if (expected_size < 0)
    return MakeError(Errc::kInvalidArgument,
                     op + ": negative expected size " + std::to_string(expected_size));
  auto already = [&] {
    return MakeError(Errc::kAlreadyExists, op + ": blob is already in the store");
  };
  const std::string ipath = IngestPath(expected).string();
  for (;;) {
    if (Has(expected)) return already();
    ASSIGN_OR_RETURN(UniqueFd fd,
                     common::Wrap(common::Open(ipath, O_RDWR | O_CREAT | O_NOFOLLOW, 0644), op));
    TRY(common::Wrap(internal::FlockWait(fd.get(), LOCK_EX, cancel, "`" + ipath + "`"), op));
    // The previous holder may have committed (our fd is now the blob's
    // inode), abandoned (unlinked) or been cleaned up while we waited; only
    // a lock on the inode that is still at `ipath` counts.
    struct stat mine {
    }, named{};
    if (::fstat(fd.get(), &mine) != 0) return ErrnoError(op + ": stat `" + ipath + "`");
    bool current = ::stat(ipath.c_str(), &named) == 0 && SameFile(mine, named);
    if (Has(expected)) {
      // A file we created after the blob was committed is empty litter.
      if (current) ::unlink(ipath.c_str());
      return already();
    }
    if (!current) continue;

    int64_t have = mine.st_size;
    common::Sha256 hash;
    if (have > expected_size) {
      LOG(Debug) << "partial is longer than expected, restarting"
                 << common::Kv("digest", expected.str()) << common::Kv("have", have)
                 << common::Kv("want", expected_size);
      if (::ftruncate(fd.get(), 0) != 0) return ErrnoError(op + ": truncate `" + ipath + "`");
      have = 0;
    } else if (have > 0) {
      ASSIGN_OR_RETURN(int64_t hashed, common::Wrap(Rehash(fd.get(), have, hash, ipath), op));
      have = hashed;
    }
    return Ingest(std::move(fd), ipath, BlobPath(expected), expected, expected_size, have,
                  std::move(hash));
  }
}

Result<UnnamedIngest> ContentStore::BeginUnnamedIngest() const {
  const std::string op = "create unnamed ingest file in `" + ingest_dir_.string() + "`";
  int fd = ::open(ingest_dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EOPNOTSUPP || errno == EISDIR)
      return MakeError(Errc::kUnimplemented, op + ": the file system has no O_TMPFILE");
    return ErrnoError(op);
  }
  return UnnamedIngest(UniqueFd(fd), blobs_dir_ / "sha256");
}

Status ContentStore::WriteBlob(const Digest& expected, std::string_view data,
                               const std::atomic<bool>* cancel) {
  auto ing = BeginIngest(expected, static_cast<int64_t>(data.size()), cancel);
  if (!ing) {
    if (ing.error().code == Errc::kAlreadyExists) return {};
    return std::unexpected(std::move(ing.error()));
  }
  // A leftover partial may hold a prefix; start over rather than trust it,
  // the data is at hand.
  if (ing->offset() != 0) TRY(ing->Restart());
  TRY(ing->Write(data));
  return ing->Commit();
}

Status ContentStore::Delete(const Digest& d) {
  if (::unlink(BlobPath(d).c_str()) != 0) return ErrnoError("delete blob " + d.str());
  return {};
}

Status ContentStore::SyncBlobs() {
  return common::Wrap(common::FsyncDir(blobs_dir_ / "sha256"), "sync blobs");
}

Result<std::vector<Digest>> ContentStore::List() const {
  std::vector<Digest> out;
  std::error_code ec;
  for (std::string_view algo : {"sha256", "sha512"}) {
    std::filesystem::path dir = blobs_dir_ / algo;
    std::filesystem::directory_iterator it(dir, ec);
    if (ec) {
      if (ec == std::errc::no_such_file_or_directory) continue;
      return common::ErrnoError("list blobs in `" + dir.string() + "`", ec.value());
    }
    for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
      auto d = Digest::Parse(std::string(algo) + ":" + it->path().filename().string());
      if (d) out.push_back(std::move(*d));
    }
    if (ec) return common::ErrnoError("list blobs in `" + dir.string() + "`", ec.value());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<int64_t> ContentStore::CleanIngest(std::chrono::seconds min_age) {
  std::string op = "clean ingest `" + ingest_dir_.string() + "`";
  ASSIGN_OR_RETURN(UniqueFd dfd,
                   common::Wrap(common::Open(ingest_dir_.string(), O_RDONLY | O_DIRECTORY), op));
  ASSIGN_OR_RETURN(UniqueFd iter_fd,
                   common::Wrap(common::OpenAt(dfd.get(), ".", O_RDONLY | O_DIRECTORY), op));
  ASSIGN_OR_RETURN(common::UniqueDir dir, common::UniqueDir::FromFd(std::move(iter_fd)));
  const auto now = std::chrono::system_clock::now();
  int64_t freed = 0;
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(dir.get());
    if (e == nullptr) {
      if (errno != 0) return ErrnoError(op + ": readdir");
      break;
    }
    std::string name = e->d_name;
    // Only names we create: "<algorithm>-<hex>".
    auto dash = name.find('-');
    if (dash == std::string::npos ||
        !Digest::Parse(name.substr(0, dash) + ":" + name.substr(dash + 1)))
      continue;
    auto fd = common::OpenAt(dfd.get(), name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (!fd) continue;  // raced with a commit or another cleaner
    ASSIGN_OR_RETURN(bool locked, internal::FlockTry(fd->get(), LOCK_EX, "`" + name + "`"));
    if (!locked) continue;  // a writer is active
    struct stat st {
    }, named{};
    if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    auto mtime = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(st.st_mtim.tv_sec) +
            std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
    if (st.st_size > 0 && now - mtime < min_age) continue;
    if (::fstatat(dfd.get(), name.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0 ||
        !SameFile(st, named))
      continue;
    if (::unlinkat(dfd.get(), name.c_str(), 0) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoError(op + ": remove `" + name + "`");
    }
    LOG(Debug) << "removed stale ingest file" << common::Kv("file", name)
               << common::Kv("bytes", st.st_size);
    freed += st.st_size;
  }
  return freed;
}

// ---- Ingest ----------------------------------------------------------------

Ingest::Ingest(UniqueFd fd, std::filesystem::path ingest_path, std::filesystem::path blob_path,
               Digest expected, int64_t expected_size, int64_t offset, common::Sha256 hash)
    : fd_(std::move(fd)),
      ingest_path_(std::move(ingest_path)),
      blob_path_(std::move(blob_path)),
      expected_(std::move(expected)),
      expected_size_(expected_size),
      offset_(offset),
      writeback_from_(offset),
      hash_(std::move(hash)) {}

Ingest::~Ingest() {
  if (fd_.valid() && offset_ == 0) Abandon();
}

Status Ingest::Finished(std::string_view op) const {
  if (fd_.valid()) return {};
  return MakeError(Errc::kFailedPrecondition,
                   std::string(op) + " " + expected_.str() + ": ingest is already finished");
}

Status Ingest::Write(std::string_view data) {
  return Write(std::as_bytes(std::span<const char>(data.data(), data.size())));
}

Status Ingest::Write(std::span<const std::byte> data) {
  TRY(Finished("write"));
  if (static_cast<uint64_t>(data.size()) > static_cast<uint64_t>(expected_size_ - offset_))
    return MakeError(Errc::kDataLoss, "write " + expected_.str() + ": " +
                                          std::to_string(data.size()) + " bytes at offset " +
                                          std::to_string(offset_) + " exceed the expected size " +
                                          std::to_string(expected_size_));
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), offset_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write `" + ingest_path_.string() + "`");
    }
    if (n == 0) return ErrnoError("write `" + ingest_path_.string() + "`", EIO);
    auto written = data.first(static_cast<size_t>(n));
    hash_.Update(written);
    offset_ += n;
    data = data.subspan(static_cast<size_t>(n));
  }
  if (offset_ - writeback_from_ >= kWriteBehind) {
    // A hint: errors (a file system without it) surface at Commit's fsync.
    (void)::sync_file_range(fd_.get(), writeback_from_, offset_ - writeback_from_,
                            SYNC_FILE_RANGE_WRITE);
    writeback_from_ = offset_;
  }
  return {};
}

common::Digest Ingest::written_digest() const {
  if (finished()) return {};
  return hash_.Current();
}

Status Ingest::Restart() {
  TRY(Finished("restart"));
  if (::ftruncate(fd_.get(), 0) != 0) return ErrnoError("truncate `" + ingest_path_.string() + "`");
  offset_ = 0;
  writeback_from_ = 0;
  hash_ = common::Sha256();
  return {};
}

Status Ingest::Commit(DirSync dir_sync) {
  TRY(Finished("commit"));
  const std::string op = "commit " + expected_.str();
  if (offset_ != expected_size_) {
    Abandon();
    return MakeError(Errc::kDataLoss, op + ": got " + std::to_string(offset_) +
                                          " bytes, expected " + std::to_string(expected_size_));
  }
  Digest got = hash_.Finish();
  if (got != expected_) {
    Abandon();
    return MakeError(Errc::kDataLoss, op + ": content has digest " + got.str());
  }
  // The streamed hash covers what we wrote; the size on disk must agree too
  // (a truncation behind our back would otherwise go unnoticed).
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0)
    return ErrnoError(op + ": stat `" + ingest_path_.string() + "`");
  if (st.st_size != expected_size_) {
    Abandon();
    return MakeError(Errc::kDataLoss, op + ": file has " + std::to_string(st.st_size) +
                                          " bytes, expected " + std::to_string(expected_size_));
  }
  // The hash state is consumed; a retry after an I/O error below re-hashes
  // the partial through BeginIngest.
  auto fail = [&](std::unexpected<common::Error> e) {
    ::fchmod(fd_.get(), 0644);
    fd_.reset();
    return e;
  };
  if (::fchmod(fd_.get(), 0444) != 0) return fail(ErrnoError(op + ": chmod"));
  if (::fsync(fd_.get()) != 0)
    return fail(ErrnoError(op + ": fsync `" + ingest_path_.string() + "`"));
  if (::rename(ingest_path_.c_str(), blob_path_.c_str()) != 0)
    return fail(ErrnoError(op + ": rename to `" + blob_path_.string() + "`"));
  // Released only after the rename, so a waiter that gets the lock next
  // sees the blob.
  fd_.reset();
  if (dir_sync == DirSync::kDeferred) return {};
  return common::Wrap(common::FsyncDir(blob_path_.parent_path()), op);
}

// ---- UnnamedIngest ---------------------------------------------------------

UnnamedIngest::UnnamedIngest(UniqueFd fd, std::filesystem::path blobs_dir)
    : fd_(std::move(fd)), blobs_dir_(std::move(blobs_dir)) {}

Status UnnamedIngest::Write(std::span<const std::byte> data) {
  if (digest_)
    return MakeError(Errc::kFailedPrecondition, "write unnamed ingest: it is already finished");
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), size_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write unnamed ingest file");
    }
    if (n == 0) return ErrnoError("write unnamed ingest file", EIO);
    hash_.Update(data.first(static_cast<size_t>(n)));
    size_ += n;
    data = data.subspan(static_cast<size_t>(n));
  }
  if (size_ - writeback_from_ >= Ingest::kWriteBehind) {
    // A hint, as in Ingest::Write: Commit's fsync reports what failed.
    (void)::sync_file_range(fd_.get(), writeback_from_, size_ - writeback_from_,
                            SYNC_FILE_RANGE_WRITE);
    writeback_from_ = size_;
  }
  return {};
}

const Digest& UnnamedIngest::Finish() {
  if (!digest_) digest_ = hash_.Finish();
  return *digest_;
}

Status UnnamedIngest::Commit(Ingest::DirSync dir_sync) {
  if (committed_) return {};
  const Digest& d = Finish();
  const std::string op = "commit " + d.str();
  const std::filesystem::path blob = blobs_dir_ / d.hex();
  if (::fchmod(fd_.get(), 0444) != 0) return ErrnoError(op + ": chmod");
  if (::fsync(fd_.get()) != 0) return ErrnoError(op + ": fsync");
  // An O_TMPFILE file gets its name through its /proc link; AT_EMPTY_PATH
  // would do without /proc but needs CAP_DAC_READ_SEARCH.
  std::string self = "/proc/self/fd/" + std::to_string(fd_.get());
  if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, blob.c_str(), AT_SYMLINK_FOLLOW) != 0 &&
      errno != EEXIST)
    return ErrnoError(op + ": link to `" + blob.string() + "`");
  committed_ = true;
  if (dir_sync == Ingest::DirSync::kDeferred) return {};
  return common::Wrap(common::FsyncDir(blobs_dir_), op);
}

void Ingest::Abandon() {
  if (!fd_.valid()) return;
  // We hold the lock and BeginIngest checked that our inode is the one at
  // ingest_path_; nobody can have replaced it since.
  if (::unlink(ingest_path_.c_str()) != 0 && errno != ENOENT)
    LOG(Debug) << "remove partial failed" << common::Kv("path", ingest_path_.string())
               << common::Kv("errno", errno);
  fd_.reset();
}

}  // namespace store
