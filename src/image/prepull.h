#pragma once
// Pre-pull lists (`gantry prepull FILE`, `gantry serve --prepull FILE`):
// images a node keeps in its store, pulled ahead of use and pinned so that
// `gantry prune --all` and kubelet's image GC leave them.
//
//   ASSIGN_OR_RETURN(std::string text, common::ReadFile(path));
//   std::vector<image::PrepullEntry> list = image::ParsePrepullList(text);
//   ASSIGN_OR_RETURN(auto results, image::RunPrepull(db, list, {
//       .jobs = 2, .owner = image::PrepullOwner(path), .pull = pull_one}));
//
// The list format (docs/prepull.md): one image a line, `REF [PLATFORM]`,
// PLATFORM being os/arch[/variant] (`--platform PLATFORM` and
// `--platform=PLATFORM` are accepted for it too); the host's platform when
// none is given. `#` starts a comment (a whole line, or after white
// space); blank lines are ignored. A line that does not parse is an entry
// of its own with `error` set: it fails alone, the rest of the list is
// pulled (a typo in a ConfigMap must not stop a node's whole pre-pull).
//
// Pins: each run makes the list's references the whole set of pins of
// `owner` (store::Txn::SetPins) before it pulls, so an image is pinned as
// soon as it lands, and an image taken off the list is unpinned by the
// next run (it stays in the store until a prune). The owner names the list
// (PrepullOwner: its absolute path), so two lists keep their own pins.
//
// Thread-safety: RunPrepull may run concurrently with anything that uses
// the store; `pull` and `on_result` are called from up to `jobs` threads.

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/error.h"
#include "image/fetch.h"
#include "oci/manifest.h"
#include "registry/reference.h"
#include "store/metadata.h"

namespace image {

struct PrepullEntry {
  int line = 0;                                // 1-based line number in the list
  std::string text = {};                       // the reference as written
  std::optional<registry::ImageRef> ref = {};  // unset when the line did not parse
  std::optional<oci::Platform> platform = {};  // unset: the host's
  std::string error = {};                      // why the line did not parse
};

// Parses a list (format above). Never fails: bad lines become entries
// with `error` set.
[[nodiscard]] std::vector<PrepullEntry> ParsePrepullList(std::string_view text);

// The pin owner of the list at `path`: "prepull:" + its absolute path
// (lexically normalised, symlinks not resolved: a Kubernetes ConfigMap
// swaps the link's target, the path stays), or "prepull:-" for "-".
[[nodiscard]] std::string PrepullOwner(const std::filesystem::path& path);

enum class PrepullState { kPulled, kPresent, kFailed };
// "pulled" | "present" | "failed".
[[nodiscard]] std::string_view PrepullStateName(PrepullState s);

struct PrepullResult {
  int line = 0;
  std::string ref = {};       // the normalised reference, or the text as written
  std::string platform = {};  // "" when the list gave none
  std::string digest = {};    // what the reference resolved to ("" when failed)
  PrepullState state = PrepullState::kFailed;
  std::string error = {};  // one line, when failed
  int64_t bytes_downloaded = 0;
};

// One pull of an entry (whose `ref` is set): `gantry prepull` calls
// image::PullImage, `gantry serve` its pull manager.
using PrepullPullFn = std::function<common::Result<FetchResult>(const PrepullEntry&)>;

struct PrepullOptions {
  int jobs = 2;                               // images pulled at once (clamped to [1, list size])
  std::string owner = {};                     // the pins' owner; "": pin nothing
  PrepullPullFn pull = {};                    // REQUIRES: set
  const std::atomic<bool>* cancel = nullptr;  // stops handing out pulls; may be null
  // Called once per entry as it ends, from the pulling thread.
  std::function<void(const PrepullResult&)> on_result{};
};

// Sets the pins (above), then pulls every entry, at most `jobs` at once.
// Returns one result per entry, in list order: kPresent when the pull
// fetched no blob (the store had the image as the reference now names
// it), kPulled when it fetched some, kFailed with the pull's (or the
// line's) error. Entries not started because `cancel` was set are
// kFailed ("cancelled"). Errors: only the pins' (store::Txn::SetPins);
// failed pulls are results, not errors.
[[nodiscard]] common::Result<std::vector<PrepullResult>> RunPrepull(
    store::MetadataDb& db, const std::vector<PrepullEntry>& entries, const PrepullOptions& options);

struct PrepullWatchOptions {
  std::filesystem::path list = {};  // a file (not "-")
  // A round at least this often, even when the list did not change (tags
  // re-resolved: a changed digest is pulled); zero: only on change.
  std::chrono::seconds refresh{0};
  // How often the list file is looked at (stat, following symlinks: a
  // ConfigMap volume's `..data` swap changes the target's inode).
  std::chrono::milliseconds poll{std::chrono::seconds(2)};
  PrepullOptions run = {};  // `owner` defaults to PrepullOwner(list)
  // After each round, with its results; or with the error that stopped
  // the round (the list unreadable: pins are then left as they were).
  std::function<void(const common::Result<std::vector<PrepullResult>>&)> on_round{};
};

// Runs a round at once, then again whenever the list file changes (its
// inode, size or mtime) or `refresh` has passed since the last round,
// until *stop is set (polled at least every 100 ms). A list that cannot be
// read (a round reported with the error) is read again once it changes or
// `refresh` has passed. REQUIRES: `stop` non-null.
void WatchPrepullList(store::MetadataDb& db, const PrepullWatchOptions& options,
                      const std::atomic<bool>* stop);

// WatchPrepullList on a thread of its own (`gantry serve --prepull`), with
// a store connection of its own, so that other connections (the CRI
// catalog) see its pin changes as another connection's commits
// (store::MetadataDb::DataVersion).
//
//   ASSIGN_OR_RETURN(auto watcher, image::PrepullWatcher::Start(root, options));
//   ...
//   watcher->RequestStop();  // no new pulls; e.g. before the server's Shutdown
//   watcher->Stop();         // waits for the round in progress
//
// The round in progress ends once its pulls return: `options.run.pull`
// should be cancellable from outside (the CRI server's Shutdown cancels
// its pulls); entries not started yet are skipped (kFailed, "cancelled").
class PrepullWatcher {
 public:
  PrepullWatcher(const PrepullWatcher&) = delete;
  PrepullWatcher& operator=(const PrepullWatcher&) = delete;
  ~PrepullWatcher();  // Stop()

  // Opens the store's metadata at `root` and starts the thread. Errors:
  // the store's (MetadataDb::Open).
  [[nodiscard]] static common::Result<std::unique_ptr<PrepullWatcher>> Start(
      const std::filesystem::path& root, PrepullWatchOptions options);

  // Asks the thread to stop: no new pull is started. Does not wait.
  void RequestStop();
  // RequestStop, then waits for the thread. Idempotent.
  void Stop();

 private:
  explicit PrepullWatcher(store::MetadataDb db);
  store::MetadataDb db_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace image
