#pragma once
// The unpack step shared by `gantry pull` (overlapped with the download)
// and `gantry unpack`.

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli/app.h"
#include "cli/store_open.h"
#include "common/error.h"
#include "image/unpacker.h"
#include "registry/pull.h"

namespace cli {

// Unpacks the image record `name` with the --snapshotter of `global`,
// printing one summary line to `out` unless it is null.
[[nodiscard]] common::Result<image::UnpackResult> UnpackNamed(const GlobalOptions& global,
                                                              OpenedStore& s,
                                                              const std::string& name, FILE* out,
                                                              const std::atomic<bool>* cancel);

// `gantry pull`'s unpack, overlapped with the download: fed the pull's
// events, a worker thread applies each layer as soon as its blob is
// verified in the content store, while later layers still download
// (layers in parallel and commits in chain order, as image::Unpack does).
// Finish() then does what UnpackNamed does, which by then is mostly
// labelling the image record.
//
//   ASSIGN_OR_RETURN(auto u, PullUnpack::Start(global, store, &cancel, on_unpack_event));
//   opts.on_event = [&](const registry::PullEvent& e) { u->OnEvent(e); };
//   auto pulled = registry::Pull(..., opts);
//   auto unpacked = u->Finish(pulled.has_value(), pulled ? pulled->name : "", stdout);
class PullUnpack {
 public:
  // `s` and `cancel` must outlive the object. `on_event` (may be empty)
  // gets the unpack's progress events (image::UnpackOptions::on_event),
  // from the worker's threads, while the pull's own events still arrive
  // from the download threads: the caller serialises the two.
  [[nodiscard]] static common::Result<std::unique_ptr<PullUnpack>> Start(
      const GlobalOptions& global, OpenedStore& s, const std::atomic<bool>* cancel,
      std::function<void(const registry::PullEvent&)> on_event = nullptr);
  ~PullUnpack();  // stops waiting for blobs and joins the worker
  PullUnpack(const PullUnpack&) = delete;
  PullUnpack& operator=(const PullUnpack&) = delete;

  // The pull's event callback (called from its threads, serialised).
  void OnEvent(const registry::PullEvent& e);

  // The pull's before_record hook: once every blob is in the store, waits
  // for the layers being unpacked and returns their error (the pull then
  // fails and records nothing).
  [[nodiscard]] common::Status WaitForLayers();

  snapshot::Snapshotter& snapshotter() { return *sn_; }

  // Call once Pull returned. `pulled` false: stops the unpack (layers not
  // committed are removed) and returns an empty result; the pull's error
  // is the one to report. Otherwise waits for the layers in flight, then
  // unpacks the image record `name` (applying whatever is still missing
  // and labelling it) and prints the summary to `out` unless null. Errors:
  // as image::UnpackRecorded.
  [[nodiscard]] common::Result<image::UnpackResult> Finish(bool pulled, const std::string& name,
                                                           FILE* out);

 private:
  PullUnpack(OpenedStore& s, std::unique_ptr<snapshot::Snapshotter> sn,
             const std::atomic<bool>* cancel,
             std::function<void(const registry::PullEvent&)> on_event)
      : s_(s), sn_(std::move(sn)), cancel_(cancel), on_event_(std::move(on_event)) {}
  void Work();
  common::Result<image::UnpackResult> UnpackEarly(std::vector<store::Descriptor> layers,
                                                  store::Descriptor config);
  common::Status WaitForBlob(const common::Digest& blob);
  void StopWaiting();

  OpenedStore& s_;
  std::unique_ptr<snapshot::Snapshotter> sn_;
  const std::atomic<bool>* cancel_;
  std::function<void(const registry::PullEvent&)> on_event_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool resolved_ = false;  // guarded by mu_, as the next four
  bool pull_over_ = false;
  std::vector<store::Descriptor> layers_;
  std::optional<store::Descriptor> config_;
  std::set<std::string> ready_;  // blobs verified in the store
  std::optional<common::Result<image::UnpackResult>> early_;  // the worker's, once joined
  std::thread worker_;
};

}  // namespace cli
