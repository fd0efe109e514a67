#include "archive/archive_contents.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "archive/tar_index.h"
#include "unpack/apply.h"

namespace archives {

using common::Errc;
using common::MakeError;

namespace {

// The walk's one buffer: what a streamed archive costs in memory.
constexpr size_t kStreamChunk = 1 << 20;

common::Status PreadFull(int fd, char* buf, size_t n, int64_t offset, const std::string& what,
                         const std::string& entry) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::pread(fd, buf + got, n - got, offset + static_cast<int64_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return common::ErrnoError("read `" + what + "` entry `" + entry + "`");
    if (r == 0)
      return MakeError(Errc::kDataLoss,
                       "archive `" + what + "` is truncated (in entry `" + entry + "`)");
    got += static_cast<size_t>(r);
  }
  return {};
}

// Inflates a gzip stream into a pipe on a thread of its own, so that the
// tar walker, which reads a file descriptor, reads the tar inside.
class PipedGunzip {
 public:
  static common::Result<std::unique_ptr<PipedGunzip>> Start(int in) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return common::ErrnoError("pipe");
    std::unique_ptr<PipedGunzip> g(new PipedGunzip(in, common::UniqueFd(fds[0])));
    g->worker_ = std::thread(
        [p = g.get(), w = common::UniqueFd(fds[1])]() mutable { p->Run(std::move(w)); });
    return g;
  }
  ~PipedGunzip() { (void)Finish(); }
  PipedGunzip(const PipedGunzip&) = delete;
  PipedGunzip& operator=(const PipedGunzip&) = delete;

  int fd() const { return read_.get(); }

  // Stops reading the tar: the thread's next write fails (EPIPE) and it
  // ends. Returns its error, if any but that one.
  std::optional<common::Error> Finish() {
    read_.reset();
    if (worker_.joinable()) worker_.join();
    return std::move(error_);
  }

 private:
  PipedGunzip(int in, common::UniqueFd read) : in_(in), read_(std::move(read)) {}

  void Run(common::UniqueFd w) {
    // A write to the pipe once the walker has closed it must fail with
    // EPIPE, not kill the process; SIGPIPE is thread-directed, so blocking
    // it here is enough.
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
    unpack::FdSource src(in_);
    auto dec = unpack::Decompress(oci::Compression::kGzip, src);
    if (!dec) {
      error_ = std::move(dec.error());
      return;
    }
    std::vector<std::byte> buf(kStreamChunk);
    for (;;) {
      auto n = (*dec)->Read(buf);
      if (!n) {
        error_ = std::move(n.error());
        return;
      }
      if (*n == 0) return;
      size_t off = 0;
      while (off < *n) {
        ssize_t k = ::write(w.get(), buf.data() + off, *n - off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno == EPIPE) return;  // the walker is done
        if (k < 0) {
          error_ = common::ErrnoError("write decompressed archive").error();
          return;
        }
        off += static_cast<size_t>(k);
      }
    }
  }

  int in_;
  common::UniqueFd read_;
  std::thread worker_;
  std::optional<common::Error> error_;  // the thread's; read after join
};

// The first byte of `fd`, left unread: pread for a file, tee(2) into a
// scratch pipe for a pipe, MSG_PEEK for a socket. -1 at the end of the
// stream or when the descriptor is none of these. One byte is enough to
// tell a gzip stream (0x1f) from a tar (whose first entry's name is text);
// the inflater checks the whole magic.
common::Result<int> PeekByte(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return common::ErrnoError("stat");
  char c = 0;
  ssize_t n = 0;
  if (S_ISREG(st.st_mode)) {
    off_t at = ::lseek(fd, 0, SEEK_CUR);
    n = at < 0 ? -1 : ::pread(fd, &c, 1, at);
  } else if (S_ISSOCK(st.st_mode)) {
    do n = ::recv(fd, &c, 1, MSG_PEEK);
    while (n < 0 && errno == EINTR);
  } else if (S_ISFIFO(st.st_mode)) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return common::ErrnoError("pipe");
    common::UniqueFd pr(p[0]), pw(p[1]);
    do n = ::tee(fd, pw.get(), 1, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) n = ::read(pr.get(), &c, 1);
  }
  if (n < 0) return common::ErrnoError("peek");
  return n == 0 ? -1 : static_cast<unsigned char>(c);
}

}  // namespace

common::Result<std::shared_ptr<ArchiveContents>> ArchiveContents::OpenFile(
    const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(common::UniqueFd fd, common::Open(path.string(), O_RDONLY));
  return OpenFd(std::move(fd), path.string());
}

common::Result<std::shared_ptr<ArchiveContents>> ArchiveContents::OpenFd(common::UniqueFd fd,
                                                                         std::string what) {
  std::shared_ptr<ArchiveContents> c(new ArchiveContents());
  c->what_ = std::move(what);
  ASSIGN_OR_RETURN(TarIndex index, IndexTar(fd.get(), c->what_));
  for (auto& [name, e] : index)
    c->entries_[name] = ContentEntry{
        .name = e.name, .fd = fd.get(), .offset = e.offset, .size = e.size, .sha256 = {}};
  c->file_ = std::move(fd);
  return c;
}

common::Result<std::shared_ptr<ArchiveContents>> ArchiveContents::ReadStream(
    int fd, std::string what, store::ContentStore& content, const std::atomic<bool>* cancel) {
  std::shared_ptr<ArchiveContents> c(new ArchiveContents());
  c->what_ = std::move(what);
  c->content_ = &content;
  std::vector<std::byte> buf(kStreamChunk);
  auto where = [&](const std::string& entry) {
    return "archive `" + c->what_ + "` entry `" + entry + "`";
  };
  auto on_entry = [&](const TarEntry& e, const BodyReader& read) -> common::Status {
    if (cancel != nullptr && cancel->load())
      return MakeError(Errc::kCancelled, "read archive `" + c->what_ + "`: cancelled");
    if (e.type != '0') return {};
    const bool small = e.size <= kSmallEntry;
    std::optional<store::UnnamedIngest> own;
    if (small && !c->small_) {
      ASSIGN_OR_RETURN(store::UnnamedIngest s, content.BeginUnnamedIngest());
      c->small_.emplace(std::move(s));
    }
    if (!small) {
      ASSIGN_OR_RETURN(store::UnnamedIngest s, content.BeginUnnamedIngest());
      own.emplace(std::move(s));
    }
    store::UnnamedIngest& file = small ? *c->small_ : *own;
    const int64_t offset = file.size();
    common::Sha256 hash;
    int64_t left = e.size;
    while (left > 0) {
      if (cancel != nullptr && cancel->load())
        return MakeError(Errc::kCancelled, "read archive `" + c->what_ + "`: cancelled");
      ASSIGN_OR_RETURN(size_t n, read(buf.data(), buf.size()));
      if (n == 0) break;  // the walker reports the truncation
      auto chunk = std::span<const std::byte>(buf.data(), n);
      // A small entry's digest is its own; a large one's is its file's.
      if (small) hash.Update(chunk);
      if (auto st = file.Write(chunk); !st) return std::unexpected(st.error().Wrap(where(e.name)));
      left -= static_cast<int64_t>(n);
    }
    ContentEntry entry{
        .name = e.name, .fd = file.fd(), .offset = offset, .size = e.size, .sha256 = {}};
    entry.sha256 = small ? hash.Finish() : own->Finish();
    c->entries_[e.name] = std::move(entry);
    // A later entry of the name replaces the earlier one, file and all.
    if (own)
      c->ingests_.insert_or_assign(e.name, std::move(*own));
    else
      c->ingests_.erase(e.name);
    return {};
  };
  ASSIGN_OR_RETURN(bool gzip, IsGzip(fd));
  std::unique_ptr<PipedGunzip> gunzip;
  if (gzip) {
    ASSIGN_OR_RETURN(gunzip, PipedGunzip::Start(fd));
  }
  auto walked = WalkTar(gunzip ? gunzip->fd() : fd, c->what_, on_entry);
  if (gunzip) {
    // A corrupt gzip stream makes the tar look truncated: its own error
    // says why.
    if (auto e = gunzip->Finish())
      return std::unexpected(std::move(*e).Wrap("decompress archive `" + c->what_ + "`"));
  }
  TRY(walked);
  return c;
}

common::Result<bool> ArchiveContents::IsGzip(int fd) {
  ASSIGN_OR_RETURN(int head, PeekByte(fd));
  return head == 0x1f;
}

const ContentEntry* ArchiveContents::Find(std::string_view name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

common::Result<const ContentEntry*> ArchiveContents::Need(std::string_view name,
                                                          std::string_view role) const {
  std::string clean(name);
  while (clean.starts_with("./")) clean.erase(0, 2);
  const ContentEntry* e = Find(clean);
  if (e == nullptr)
    return MakeError(Errc::kNotFound, "archive `" + what_ + "`: " + std::string(role) + " `" +
                                          std::string(name) + "` is not in the archive");
  return e;
}

common::Result<std::string> ArchiveContents::Read(const ContentEntry& e, size_t max) const {
  if (e.size > static_cast<int64_t>(max))
    return MakeError(Errc::kInvalidArgument, "archive `" + what_ + "`: entry `" + e.name +
                                                 "` is over " + std::to_string(max) + " bytes");
  std::string out(static_cast<size_t>(e.size), '\0');
  TRY(PreadFull(e.fd, out.data(), out.size(), e.offset, what_, e.name));
  return out;
}

common::Status ArchiveContents::Stream(const ContentEntry& e, int64_t size,
                                       registry::BlobSink& sink,
                                       const std::atomic<bool>* cancel) const {
  return registry::StreamFileBlob(e.fd, std::min(size, e.size), sink, cancel,
                                  "entry `" + e.name + "` of archive `" + what_ + "`", e.offset);
}

std::string ArchiveContents::Head(const ContentEntry& e) const {
  std::string b(4, '\0');
  ssize_t n = ::pread(e.fd, b.data(), b.size(), e.offset);
  b.resize(n > 0 ? static_cast<size_t>(std::min<int64_t>(n, e.size)) : 0);
  return b;
}

common::Result<common::Sha256> ArchiveContents::HashPrefix(const ContentEntry& e,
                                                           int64_t len) const {
  common::Sha256 h;
  std::vector<char> buf(1 << 20);
  int64_t off = 0;
  while (off < len) {
    size_t n = static_cast<size_t>(std::min<int64_t>(len - off, static_cast<int64_t>(buf.size())));
    TRY(PreadFull(e.fd, buf.data(), n, e.offset + off, what_, e.name));
    h.Update(buf.data(), n);
    off += static_cast<int64_t>(n);
  }
  return h;
}

common::Result<common::Digest> ArchiveContents::DigestOf(const ContentEntry& e) const {
  if (e.sha256) return *e.sha256;
  ASSIGN_OR_RETURN(common::Sha256 h, HashPrefix(e, e.size));
  return h.Finish();
}

common::Status ArchiveContents::CommitEntry(const ContentEntry& e,
                                            store::Ingest::DirSync dir_sync) {
  auto where = "archive `" + what_ + "` entry `" + e.name + "`";
  if (content_ == nullptr || !e.sha256)
    return MakeError(Errc::kFailedPrecondition, where + ": not read from a stream");
  if (auto it = ingests_.find(e.name); it != ingests_.end())
    return common::Wrap(it->second.Commit(dir_sync), where);
  // A small entry shares its file: it gets one of its own.
  if (content_->Has(*e.sha256)) return {};
  ASSIGN_OR_RETURN(std::string body, Read(e, static_cast<size_t>(kSmallEntry)));
  ASSIGN_OR_RETURN(store::UnnamedIngest ing, content_->BeginUnnamedIngest());
  TRY(ing.Write(std::as_bytes(std::span<const char>(body.data(), body.size()))));
  if (ing.Finish() != *e.sha256)
    return MakeError(Errc::kDataLoss, where + " changed since it was read");
  return common::Wrap(ing.Commit(dir_sync), where);
}

}  // namespace archives
