#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <system_error>

#include "common/fs.h"
#include "common/log.h"
#include "unpack/file_finisher_internal.h"

namespace unpack::internal {

using common::ErrnoError;
using common::Status;

FileFinisher::~FileFinisher() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

Status FileFinisher::Finish(Job& job) {
  auto fail = [&](const std::string& what) -> Status {
    return std::unexpected(ErrnoError(what).error().Wrap("entry `" + job.entry + "`"));
  };
  const int fd = job.fd.get();
  if (auto st = common::PwriteAll(fd, {job.data.data(), job.data.size()}, 0); !st)
    return std::unexpected(st.error().Wrap("entry `" + job.entry + "`"));
  if (static_cast<int64_t>(job.data.size()) < job.size && ::ftruncate(fd, job.size) != 0)
    return fail("extend to size");
  // The applier's order: owner (clears setuid and capabilities), mode,
  // xattrs, times.
  if (job.chown && ::fchown(fd, job.uid, job.gid) != 0)
    return fail("chown to " + std::to_string(job.uid) + ":" + std::to_string(job.gid));
  if (::fchmod(fd, job.perm) != 0) return fail("chmod");
  for (const auto& [name, value] : job.xattrs) {
    if (::fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) == 0) continue;
    if (errno == ENOTSUP || errno == EOPNOTSUPP) {
      LOG(Warn) << "xattr not supported by the file system, skipped" << common::Kv("xattr", name);
      continue;
    }
    return fail("set xattr `" + name + "`");
  }
  if (::futimens(fd, job.times) != 0) return fail("set times");
  if (::close(job.fd.release()) != 0 && errno != EINTR) return fail("close");
  return {};
}

Status FileFinisher::Submit(Job job) {
  if (!worker_.joinable() && !inline_) {
    try {
      worker_ = std::thread([this] { Work(); });
    } catch (const std::system_error& e) {
      LOG(Warn) << "cannot start the file thread, finishing files inline"
                << common::Kv("error", e.what());
      inline_ = true;
    }
  }
  if (inline_) return Finish(job);
  std::unique_lock l(mu_);
  // Always admit one job, however large, so that progress is possible.
  cv_.wait(l, [&] { return error_ || queue_.empty() || queued_bytes_ + job.data.size() <= max_bytes_; });
  if (error_) return std::unexpected(*error_);
  queued_bytes_ += job.data.size();
  queue_.push_back(std::move(job));
  cv_.notify_all();
  return {};
}

Status FileFinisher::Wait() {
  if (!worker_.joinable()) return {};
  std::unique_lock l(mu_);
  cv_.wait(l, [&] { return queue_.empty() && !busy_; });
  if (error_) return std::unexpected(*error_);
  return {};
}

void FileFinisher::Work() {
  std::unique_lock l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stop_, and nothing left
    Job job = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= job.data.size();
    busy_ = true;
    cv_.notify_all();  // room for Submit
    // After an error, or when the apply is abandoned (destructor without
    // Wait), the remaining jobs are only closed (by Job's fd).
    const bool skip = error_.has_value() || stop_;
    l.unlock();
    Status st = skip ? Status{} : Finish(job);
    job = Job{};
    l.lock();
    busy_ = false;
    if (!st && !error_) error_ = std::move(st.error());
    cv_.notify_all();
  }
}

}  // namespace unpack::internal
