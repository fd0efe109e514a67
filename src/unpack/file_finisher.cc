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
  if (workers_.empty()) return;
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

Status FileFinisher::Finish(Job& job) {
  auto fail = [&](const std::string& what) -> Status {
    return std::unexpected(ErrnoError(what).error().Wrap("entry `" + job.entry + "`"));
  };
  if (!job.fd && job.dir) {
    // As the applier creates: O_EXCL|O_NOFOLLOW never opens what is there
    // (the applier hands over only names that did not exist).
    int fd = ::openat(job.dir->get(), job.name.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, job.perm & 0777);
    if (fd < 0) return fail("create file");
    job.fd.reset(fd);
  }
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

void FileFinisher::StartWorkers() {
  started_ = true;
  for (int i = 0; i < threads_; ++i) {
    try {
      workers_.emplace_back([this] { Work(); });
    } catch (const std::system_error& e) {
      LOG(Warn) << "cannot start a file thread" << common::Kv("error", e.what());
      break;
    }
  }
  if (workers_.empty()) {
    LOG(Warn) << "no file thread, finishing files inline";
    inline_ = true;
  }
}

Status FileFinisher::Submit(Job job) {
  if (!started_) StartWorkers();
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
    if (idle_ > 0) work_cv_.notify_all();  // what is queued makes the room
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
  if (!job.fd && job.dir) {
    pending_.insert(PendingKey{job.dir_ino, job.name});
    pending_count_.store(pending_.size(), std::memory_order_release);
  }
  const size_t bytes_before = queued_bytes_ - job.data.size();
  queue_.push_back(std::move(job));
  // Wake-ups cost a system call and a context switch each, and a helper
  // woken for every file takes one file at a time: a sleeping helper is
  // woken once per wake_files_ files or a quarter of max_bytes_ queued
  // (Wait and a full queue wake them all).
  const size_t quarter = std::max<size_t>(1, max_bytes_ / 4);
  if (idle_ > 0 &&
      (queue_.size() % wake_files_ == 0 || bytes_before / quarter != queued_bytes_ / quarter))
    work_cv_.notify_one();
  return {};
}

bool FileFinisher::Pending(ino_t dir_ino, const std::string& name) {
  if (!AnyPending()) return false;
  std::lock_guard l(mu_);
  return pending_.contains(PendingKey{dir_ino, name});
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
  if (workers_.empty()) return {};
  std::unique_lock l(mu_);
  if (idle_ > 0 && !queue_.empty()) work_cv_.notify_all();
  producer_waiting_ = true;
  done_cv_.wait(l, [&] { return queue_.empty() && busy_ == 0; });
  producer_waiting_ = false;
  if (error_) return std::unexpected(*error_);
  return {};
}

// Takes up to batch_files_ jobs at a time, so that the lock and the
// wake-ups are per batch of files rather than per file.
void FileFinisher::Work() {
  std::unique_lock l(mu_);
  for (;;) {
    if (queue_.empty() || (hold_ && !producer_waiting_ && !stop_)) {
      if (queue_.empty() && stop_) return;
      ++idle_;
      if (producer_waiting_) done_cv_.notify_one();
      work_cv_.wait(l, [&] { return stop_ || (!queue_.empty() && (!hold_ || producer_waiting_)); });
      --idle_;
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
    ++busy_;
    l.unlock();
    if (before_batch_) before_batch_();
    size_t bytes = 0;
    std::optional<common::Error> failed;
    for (Job& job : batch) {
      bytes += job.data.size();
      if (!skip && !failed) {
        if (Status st = Finish(job); !st) failed = std::move(st.error());
      }
      job.fd.reset();  // closes the file
      job.dir.reset();
      job.data = {};
    }
    const size_t files = batch.size();
    l.lock();
    for (Job& job : batch) {
      if (job.name.empty()) continue;  // not one that creates
      if (auto it = pending_.find(PendingKey{job.dir_ino, job.name}); it != pending_.end())
        pending_.erase(it);
    }
    pending_count_.store(pending_.size(), std::memory_order_release);
    --busy_;
    queued_bytes_ -= bytes;
    held_files_ -= files;
    // Only after held_files_ is down: the producer may take a freed slot at
    // once, and what this finisher counts as held must never exceed what it
    // has taken from the budget (released first, the count overshot the
    // budget by up to a batch under load).
    if (budget_ != nullptr) budget_->Release(files);
    if (failed && !error_) error_ = std::move(failed);
    if (producer_waiting_) done_cv_.notify_one();
    l.unlock();
    batch.clear();  // the names' memory, outside the lock
    l.lock();
  }
}

}  // namespace unpack::internal
