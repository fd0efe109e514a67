// The file thread (FileFinisher) and the process's budget of files it may
// hold open.

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <system_error>

#include "common/fs.h"
#include "common/log.h"
#include "unpack/file_finisher_internal.h"

namespace unpack {

size_t OpenFileBudgetFor(uint64_t nofile) {
  const uint64_t reserve = std::max<uint64_t>(kReservedOpenFiles, nofile / 4);
  if (nofile <= reserve) return 0;
  // RLIM_INFINITY (or a limit beyond any size_t) is still a number here.
  return static_cast<size_t>(std::min<uint64_t>(nofile - reserve, SIZE_MAX));
}

OpenFileBudget& OpenFileBudget::ForProcess() {
  // One per process, like the limit it divides. Sized once: gantry raises
  // the soft limit at start-up, before the first apply.
  static OpenFileBudget budget([] {
    struct rlimit lim {};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return OpenFileBudgetFor(0);
    return OpenFileBudgetFor(lim.rlim_cur);
  }());
  return budget;
}

bool OpenFileBudget::TryAcquire() {
  size_t used = in_use_.load(std::memory_order_relaxed);
  do {
    if (used >= capacity_) return false;
  } while (!in_use_.compare_exchange_weak(used, used + 1, std::memory_order_relaxed));
  size_t peak = peak_.load(std::memory_order_relaxed);
  while (used + 1 > peak &&
         !peak_.compare_exchange_weak(peak, used + 1, std::memory_order_relaxed)) {
  }
  return true;
}

void OpenFileBudget::Release(size_t n) { in_use_.fetch_sub(n, std::memory_order_relaxed); }

}  // namespace unpack

namespace unpack::internal {

using common::ErrnoError;
using common::Status;

Status SetNewFileOwnerAndMode(int fd, bool chown, uid_t uid, gid_t gid, mode_t perm) {
  struct stat st {};
  const bool known = ::fstat(fd, &st) == 0;
  if (chown && !(known && st.st_uid == uid && st.st_gid == gid) && ::fchown(fd, uid, gid) != 0)
    return ErrnoError("chown to " + std::to_string(uid) + ":" + std::to_string(gid));
  // A chown above cannot have changed the mode: the file was created
  // without setuid and setgid bits.
  if (!(known && (st.st_mode & 07777) == perm) && ::fchmod(fd, perm) != 0)
    return ErrnoError("chmod");
  return {};
}

FileFinisher::~FileFinisher() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  work_cv_.notify_one();
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
  if (auto st = SetNewFileOwnerAndMode(fd, job.chown, job.uid, job.gid, job.perm); !st)
    return std::unexpected(st.error().Wrap("entry `" + job.entry + "`"));
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
  // A job is admitted when it fits, or alone when nothing else is held
  // (however large, so that progress is possible): held bytes never
  // exceed max(max_bytes_, the largest job). The count bound holds for
  // empty files too, which weigh nothing.
  auto room = [&] {
    return error_ || (held_files_ < max_files_ &&
                      (queued_bytes_ == 0 || queued_bytes_ + job.data.size() <= max_bytes_));
  };
  if (!room()) {
    producer_waiting_ = true;
    done_cv_.wait(l, room);
    producer_waiting_ = false;
  }
  if (error_) return std::unexpected(*error_);
  // The process's files are used up by other applies (or by this one's
  // queue): finish this file here rather than wait for them, which keeps
  // the apply going at the speed of one thread and never waits on another
  // apply.
  if (budget_ != nullptr && !budget_->TryAcquire()) {
    ++finished_inline_;
    l.unlock();
    return Finish(job);
  }
  queued_bytes_ += job.data.size();
  peak_bytes_ = std::max(peak_bytes_, queued_bytes_);
  ++held_files_;
  peak_files_ = std::max(peak_files_, held_files_);
  queue_.push_back(std::move(job));
  // Wake-ups cost a system call each: only when the helper sleeps.
  if (idle_) work_cv_.notify_one();
  return {};
}

FileFinisher::Stats FileFinisher::stats() {
  std::lock_guard l(mu_);
  return {.held_bytes = queued_bytes_,
          .peak_bytes = peak_bytes_,
          .held_files = held_files_,
          .peak_files = peak_files_,
          .finished_inline = finished_inline_,
          .producer_waiting = producer_waiting_};
}

Status FileFinisher::Wait() {
  if (!worker_.joinable()) return {};
  std::unique_lock l(mu_);
  producer_waiting_ = true;
  done_cv_.wait(l, [&] { return queue_.empty() && idle_; });
  producer_waiting_ = false;
  if (error_) return std::unexpected(*error_);
  return {};
}

// Takes up to batch_files_ jobs at a time, so that the lock and the
// wake-ups are per batch of files rather than per file.
void FileFinisher::Work() {
  std::unique_lock l(mu_);
  for (;;) {
    if (queue_.empty()) {
      if (stop_) return;
      idle_ = true;
      if (producer_waiting_) done_cv_.notify_one();
      work_cv_.wait(l, [&] { return stop_ || !queue_.empty(); });
      idle_ = false;
      continue;
    }
    std::deque<Job> batch;
    if (queue_.size() <= batch_files_) {
      batch.swap(queue_);
    } else {
      const auto end = queue_.begin() + static_cast<std::ptrdiff_t>(batch_files_);
      batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(end));
      queue_.erase(queue_.begin(), end);
    }
    // After an error, or when the apply is abandoned (destructor without
    // Wait), the remaining jobs are only closed (by Job's fd).
    const bool skip = error_.has_value() || stop_;
    l.unlock();
    if (before_batch_) before_batch_();
    size_t bytes = 0;
    std::optional<common::Error> failed;
    for (Job& job : batch) {
      bytes += job.data.size();
      if (!skip && !failed) {
        if (Status st = Finish(job); !st) failed = std::move(st.error());
      }
      job = Job{};  // closes the file
    }
    const size_t files = batch.size();
    batch.clear();
    l.lock();
    queued_bytes_ -= bytes;
    held_files_ -= files;
    // Only after held_files_ is down: the producer may take a freed slot at
    // once, and what this finisher counts as held must never exceed what it
    // has taken from the budget (released first, the count overshot the
    // budget by up to a batch under load).
    if (budget_ != nullptr) budget_->Release(files);
    if (failed && !error_) error_ = std::move(failed);
    if (producer_waiting_) done_cv_.notify_one();
  }
}

}  // namespace unpack::internal
