#pragma once
// FileFinisher: the second half of a small regular file's apply, on
// helper threads. Either the applier creates the file itself, in tar
// order, on its own thread (openat O_CREAT|O_EXCL|O_NOFOLLOW below a parent
// it resolved inside the root) and hands the open fd here, or it hands the
// parent directory (a dup of the fd it resolved inside the root) and the
// name, and a helper creates the file the same way (a job that "creates").
// Then the data is written and the owner, mode, xattrs and times are set
// through the file's fd, and the fd is closed. Nothing here resolves a
// path: names are single components below a directory fd, so what the
// helpers do cannot reach outside the root.
//
// Order: a file a helper creates is "pending" (Pending(dir inode, name))
// from Submit until its batch is done. The applier waits for the helpers
// (Wait) before an entry that works on a pending name (the same name
// again, a hardlink to it) and before any removal, so that later entries
// see names and inodes exactly as if each file had been created in tar
// order. The applier hands over only names that do not exist (it replaces
// what is there itself), so a pending name is missing until its helper
// creates it: a later entry resolving a path through it fails as a file
// used as a directory does, once the applier has waited.
//
// With 50,000 small files, creating them costs about a third of the
// system time and finishing them two thirds; the threads overlap.
//
// Each job holds an open file until it is finished, so the jobs held are
// bounded in number as well as in bytes, and each takes a slot of the
// process's OpenFileBudget; without a free slot Submit finishes the job on
// the caller's thread (apply.h, "Open files").
//
// Thread-safety: Submit, Pending and Wait from one thread (the applier's).

#include <sys/types.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/fd.h"
#include "unpack/apply.h"

namespace unpack::internal {

// Sets the owner (when `chown`) and the mode of the regular file `fd`,
// which the caller has just created with mode `perm & 0777` (through the
// umask) and nothing else has changed. One fstat says what is already
// right: a new file belongs to the creator, who is root for a privileged
// apply, and most entries are root's; so fchown and fchmod, each a
// journaled inode update, run only when they change something (chown
// first: it would clear setuid and setgid). Errors say what failed:
// "chown to 1:2: …", "chmod: …".
[[nodiscard]] common::Status SetNewFileOwnerAndMode(int fd, bool chown, uid_t uid, gid_t gid,
                                                    mode_t perm);

class FileFinisher {
 public:
  struct Job {
    common::UniqueFd fd;  // the file, or invalid: create `name` in `dir`
    // A job that creates: the parent directory (shared by the jobs of one
    // directory), its inode, the name (empty for any other job).
    std::shared_ptr<const common::UniqueFd> dir;
    ino_t dir_ino = 0;
    std::string name;
    std::vector<char> data;  // the contents from offset 0
    int64_t size = 0;        // the final size: beyond data is a trailing hole
    bool chown = false;
    uid_t uid = 0;
    gid_t gid = 0;
    mode_t perm = 0;
    std::vector<std::pair<std::string, std::string>> xattrs;  // already allowed
    struct timespec times[2] = {};
    std::string entry;  // for errors: "entry `a/b`: write: …"
  };

  // At most `max_bytes` of file contents and `max_files` jobs (open files)
  // are held, queued or being finished; Submit blocks beyond either. A job
  // larger than `max_bytes` is admitted alone (nothing else held), so the
  // byte bound is max(max_bytes, largest job). Each job held also takes a
  // slot of `budget` (not owned; nullptr: no such bound), given back once
  // its file is closed and its batch done. `before_batch` (tests only; may be empty) runs on
  // the helper thread before each batch is finished, to act out a slow
  // disk. `threads` helpers (at least 1) take batches from the queue.
  // REQUIRES: max_files >= 1.
  explicit FileFinisher(size_t max_bytes, std::function<void()> before_batch = {},
                        size_t max_files = kFileQueueFiles, OpenFileBudget* budget = nullptr,
                        int threads = 1)
      : max_bytes_(max_bytes),
        max_files_(max_files),
        threads_(std::max(1, threads)),
        batch_files_(BatchFiles(max_files, threads_)),
        wake_files_(std::min<size_t>(batch_files_, kWakeFiles)),
        budget_(budget),
        before_batch_(std::move(before_batch)) {}
  ~FileFinisher();  // finishes what is queued and joins the helpers
  FileFinisher(const FileFinisher&) = delete;
  FileFinisher& operator=(const FileFinisher&) = delete;

  // Queues `job` (the helper starts with the first), or finishes it here
  // when `budget` has no slot free. Returns the first error a finished job
  // had (this one's, when finished here), so that the apply stops soon
  // after it.
  [[nodiscard]] common::Status Submit(Job job);
  // Returns once every queued job is finished; the first error, if any.
  [[nodiscard]] common::Status Wait();
  // Whether a job that creates `name` in the directory `dir_ino` is
  // queued or in a batch not yet done.
  bool Pending(ino_t dir_ino, const std::string& name);
  // Tests only: the helpers start no batch until the producer waits (in
  // Wait, or for room), so that every file is finished as late as the
  // bounds allow. Call before the first Submit.
  void HoldUntilWaited() { hold_ = true; }
  // Whether any job that creates is (cheap: no lock).
  bool AnyPending() const { return pending_count_.load(std::memory_order_acquire) > 0; }

  // Creates the file (a job that creates), writes, sets metadata and
  // closes; the same on every thread.
  [[nodiscard]] static common::Status Finish(Job& job);

  struct Stats {
    size_t held_bytes = 0;          // file contents queued or being finished now
    size_t peak_bytes = 0;          // the most ever held at once
    size_t held_files = 0;          // jobs (open files) queued or being finished now
    size_t peak_files = 0;          // the most ever held at once
    size_t finished_inline = 0;     // jobs Submit finished itself (no budget slot)
    bool producer_waiting = false;  // Submit waits for room (or Wait for the end)
  };
  Stats stats();

 private:
  struct PendingKey {
    ino_t dir;
    std::string name;
    bool operator==(const PendingKey&) const = default;
  };
  struct PendingHash {
    size_t operator()(const PendingKey& k) const {
      return std::hash<std::string>()(k.name) ^ (std::hash<ino_t>()(k.dir) * 0x9e3779b97f4a7c15ULL);
    }
  };
  // One helper takes half the queue; several take smaller shares, so that
  // each gets some of a directory's files.
  static size_t BatchFiles(size_t max_files, int threads) {
    if (threads == 1) return std::max<size_t>(1, max_files / 2);
    return std::clamp<size_t>(max_files / (2 * static_cast<size_t>(threads)), 1, 64);
  }
  void Work();
  void StartWorkers();

  const size_t max_bytes_;
  const size_t max_files_;
  const int threads_;
  // A helper takes at most this many jobs at a time, so that the first
  // part of a full queue is finished (and makes room) while the rest
  // still waits: the producer refills it meanwhile.
  const size_t batch_files_;
  // A sleeping helper is woken when this many jobs are queued (Submit).
  static constexpr size_t kWakeFiles = 32;
  const size_t wake_files_;
  OpenFileBudget* const budget_;
  const std::function<void()> before_batch_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // helpers wait for jobs or stop_
  std::condition_variable done_cv_;  // Submit waits for room, Wait for the end
  std::deque<Job> queue_;
  size_t queued_bytes_ = 0;  // queued and being finished
  size_t peak_bytes_ = 0;    // the most queued_bytes_ ever was
  size_t held_files_ = 0;    // jobs queued and being finished
  size_t peak_files_ = 0;
  size_t finished_inline_ = 0;
  int idle_ = 0;  // helpers asleep with nothing to do
  int busy_ = 0;  // helpers finishing a batch
  bool producer_waiting_ = false;
  bool stop_ = false;
  std::optional<common::Error> error_;
  std::unordered_multiset<PendingKey, PendingHash> pending_;  // jobs that create, held
  std::atomic<size_t> pending_count_ = 0;
  std::vector<std::thread> workers_;
  bool started_ = false;
  bool hold_ = false;
  bool inline_ = false;  // no thread could be started: finish on Submit
};

}  // namespace unpack::internal
