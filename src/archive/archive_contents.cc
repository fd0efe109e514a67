#include "archive/archive_contents.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "archive/tar_index.h"

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
    if (own) c->ingests_.insert_or_assign(e.name, std::move(*own));
    return {};
  };
  TRY(WalkTar(fd, c->what_, on_entry));
  return c;
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
