#pragma once
// FileFinisher: the second half of a small regular file's apply, on a
// helper thread. The applier creates each file itself, in tar order, on its
// own thread (openat O_CREAT|O_EXCL|O_NOFOLLOW below a parent it resolved
// inside the root), then hands the open fd and the file's bytes here: the
// data is written and the owner, mode, xattrs and times are set through
// that fd, and the fd is closed. Nothing here looks up a path, so what the
// helper does cannot reach outside the root, and later entries (a
// hardlink to the file, a whiteout or a replacement of its name) work on
// names and inodes exactly as if the file were already finished.
//
// With 50,000 small files, creating them costs about a third of the
// system time and finishing them two thirds; the two threads overlap.
//
// Each job holds an open file until it is finished, so the jobs held are
// bounded in number as well as in bytes, and each takes a slot of the
// process's OpenFileBudget; without a free slot Submit finishes the job on
// the caller's thread (apply.h, "Open files").
//
// Thread-safety: Submit and Wait from one thread (the applier's).

#include <sys/types.h>
#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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
    common::UniqueFd fd;
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
  // disk. REQUIRES: max_files >= 1.
  explicit FileFinisher(size_t max_bytes, std::function<void()> before_batch = {},
                        size_t max_files = kFileQueueFiles, OpenFileBudget* budget = nullptr)
      : max_bytes_(max_bytes),
        max_files_(max_files),
        batch_files_(std::max<size_t>(1, max_files / 2)),
        budget_(budget),
        before_batch_(std::move(before_batch)) {}
  ~FileFinisher();  // finishes what is queued and joins the helper
  FileFinisher(const FileFinisher&) = delete;
  FileFinisher& operator=(const FileFinisher&) = delete;

  // Queues `job` (the helper starts with the first), or finishes it here
  // when `budget` has no slot free. Returns the first error a finished job
  // had (this one's, when finished here), so that the apply stops soon
  // after it.
  [[nodiscard]] common::Status Submit(Job job);
  // Returns once every queued job is finished; the first error, if any.
  [[nodiscard]] common::Status Wait();

  // Writes, sets metadata and closes; the same for both threads.
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
  void Work();

  const size_t max_bytes_;
  const size_t max_files_;
  // The helper takes at most this many jobs at a time, so that the first
  // half of a full queue is finished (and makes room) while the second
  // still waits: the producer refills it meanwhile.
  const size_t batch_files_;
  OpenFileBudget* const budget_;
  const std::function<void()> before_batch_;
  std::mutex mu_;
  std::condition_variable work_cv_;  // the helper waits for jobs or stop_
  std::condition_variable done_cv_;  // Submit waits for room, Wait for idle_
  std::deque<Job> queue_;
  size_t queued_bytes_ = 0;  // queued and being finished
  size_t peak_bytes_ = 0;    // the most queued_bytes_ ever was
  size_t held_files_ = 0;    // jobs queued and being finished
  size_t peak_files_ = 0;
  size_t finished_inline_ = 0;
  bool idle_ = false;  // the helper sleeps with nothing to do
  bool producer_waiting_ = false;
  bool stop_ = false;
  std::optional<common::Error> error_;
  std::thread worker_;
  bool inline_ = false;  // no thread could be started: finish on Submit
};

}  // namespace unpack::internal
