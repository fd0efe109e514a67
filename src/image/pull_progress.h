#pragma once
// Pull progress that other processes can see: one small record per pull in
// progress, in the store, written by whoever pulls (`gantry pull`, the CRI
// server) and read by whoever watches (`gantry pull --attach`, the
// gantry.v1.PullProgress service). The record format is in
// docs/pull-progress.md.
//
//   image::ProgressRecorder rec(root, ref.str());
//   opts.on_event = [&](const image::PullEvent& e) { rec.OnEvent(e); };
//   auto r = image::Fetch(...);
//   rec.Finish(r ? common::Status{} : std::unexpected(r.error()));
//
//   TRY(image::WatchPullProgress(root, ref.str(), {.wait = false}, is_cancelled,
//                                [](const image::PullProgress& p) { print(p); }));
//
// A record lives at <root>/progress/<sha256 hex of the normalised ref>.json,
// replaced by rename (readers never see a torn record), not fsynced (it is
// advisory: a crash loses at most a progress view). The last record of a
// pull stays, in phase "done" or "failed", until the next pull of the same
// reference replaces it; a record whose writer process is gone while it
// still says "resolving" or "downloading" is an abandoned pull.
//
// When a recorder writes: the first record, SetPhase and Finish at once;
// events (OnEvent, whatever their kind: the resolution, a layer's start,
// progress or end) at most once per `interval`. An event that comes sooner
// is held, and the recorder's thread writes it once the interval since the
// last write has passed, so the record is at most about an interval behind
// the pull. A write costs the whole record (every layer), so a pull of
// thousands of small layers writes a few records a second, not two per
// layer.
//
// Thread-safety: OnEvent, SetPhase and Finish may be called from any
// thread (a recorder serialises them). Readers need no lock.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "image/fetch.h"

namespace image {

// A pull's phase in its record (written by its name: docs/pull-progress.md).
enum class PullPhase { kResolving, kDownloading, kUnpacking, kDone, kFailed };

// "resolving" "downloading" "unpacking" "done" "failed".
std::string_view PullPhaseName(PullPhase p);
// The phase a name stands for; nullopt for any other name.
std::optional<PullPhase> PullPhaseNamed(std::string_view name);

struct LayerProgress {
  std::string digest;
  int64_t current = 0;                   // bytes held (downloaded or resumed)
  int64_t total = 0;                     // blob size
  LayerState state = LayerState::kNone;  // the download's until it ends, then the unpack's
  int64_t unpacked = 0;                  // bytes of the blob unpacked (kLayerUnpack events)
};

struct PullProgress {
  std::string image;  // normalised reference
  PullPhase phase = PullPhase::kResolving;
  pid_t pid = 0;
  int64_t started_ns = 0;  // Unix ns
  int64_t updated_ns = 0;
  std::vector<LayerProgress> layers;  // in manifest order
  double bytes_per_second = 0;        // recent rate
  std::string error;                  // phase "failed"

  int64_t current_bytes() const;
  int64_t total_bytes() const;
  // Seconds left at the recent rate; -1 when unknown.
  int64_t eta_seconds() const;
  bool terminal() const { return phase == PullPhase::kDone || phase == PullPhase::kFailed; }
};

// The record as JSON (the on-disk form, docs/pull-progress.md).
nlohmann::json ProgressJson(const PullProgress& p);

// <root>/progress/<sha256 hex of `image`>.json
std::filesystem::path ProgressPath(const std::filesystem::path& root, const std::string& image);

class ProgressRecorder {
 public:
  static constexpr std::chrono::milliseconds kDefaultInterval{200};

  // Writes the first record (phase "resolving") at once and starts the
  // thread that writes held events. `image` is the normalised reference.
  // Errors writing are logged at debug and ignored: progress must never
  // fail a pull.
  ProgressRecorder(std::filesystem::path root, std::string image,
                   std::chrono::milliseconds interval = kDefaultInterval);
  // Stops the thread. An event still held is not written: a pull that
  // ends calls Finish, and one that does not leaves an abandoned record.
  ~ProgressRecorder();
  ProgressRecorder(const ProgressRecorder&) = delete;
  ProgressRecorder& operator=(const ProgressRecorder&) = delete;

  // Records the event; writes at most once per `interval` (see above).
  // Ignored after Finish.
  void OnEvent(const PullEvent& e);
  // Moves to another phase (kUnpacking) and writes at once. Ignored after
  // Finish.
  void SetPhase(PullPhase phase);
  // Writes the final record at once: "done", or "failed" with the error.
  // The record is final: later calls change nothing.
  void Finish(const common::Status& result);
  // Records written so far (tests count them).
  int64_t writes() const;

 private:
  // REQUIRES (all but WriteHeld): mu_ held.
  // Applies `e` to the record; false when the record does not change.
  bool Apply(const PullEvent& e);
  void Changed(size_t layer);
  // The text of ProgressJson(p_) (its fields in another order), only the
  // layers changed since the last call serialised again: a write costs a
  // copy of the record, not the building of a JSON tree of every layer.
  std::string RecordText();
  void Write();
  void WriteHeld();  // the thread: writes a held event when its time comes

  std::filesystem::path root_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mu_;  // guards the fields below, cv_ and thread_ aside
  std::condition_variable cv_;
  PullProgress p_;
  std::map<std::string, size_t> index_;  // digest → layers_ position
  // Each layer's JSON text as last written, and the layers changed since.
  std::vector<std::string> layer_text_;
  std::vector<bool> changed_;
  std::vector<size_t> changed_list_;
  std::chrono::steady_clock::time_point last_write_{};
  std::chrono::steady_clock::time_point rate_at_{};
  int64_t rate_bytes_ = 0;
  int64_t writes_ = 0;
  bool held_ = false;      // an event not written yet
  bool finished_ = false;  // Finish wrote the final record
  bool stopping_ = false;  // the destructor runs
  std::thread thread_;     // last: started once the rest is set up
};

// The record of `image`, or nullopt when there is none. Errors: DataLoss
// for a record that does not parse; others from reading.
[[nodiscard]] common::Result<std::optional<PullProgress>> ReadPullProgress(
    const std::filesystem::path& root, const std::string& image);

// True while the record describes a pull that is still running: not
// terminal, and its writer process alive.
bool InProgress(const PullProgress& p);

struct WatchOptions {
  // No pull in progress: false → NotFound at once; true → wait for one.
  bool wait = false;
  std::chrono::milliseconds poll = std::chrono::milliseconds(100);
};

// Calls `on_update` with each new state of the pull of `image` in progress
// (polling the record), the last one terminal, then returns. A writer that
// dies mid-pull ends the watch with a "failed" update saying so.
// `on_update` returning false, or `cancelled` (may be empty) returning true,
// ends the watch with Cancelled. Errors: NotFound ("no pull of `X` in
// progress") when !wait and there is none.
[[nodiscard]] common::Status WatchPullProgress(
    const std::filesystem::path& root, const std::string& image, const WatchOptions& options,
    const std::function<bool()>& cancelled,
    const std::function<bool(const PullProgress&)>& on_update);

}  // namespace image
