#pragma once
// Frees the space of removed images in the background, as the CRI allows
// ("space may be freed async"): after RemoveImage, a garbage collection of
// the store (upkeep::Prune, as `gantry prune` without --all) runs on its
// own thread, so kubelet's image GC sees ImageFsInfo go down. Requests made
// while a collection runs are folded into one more run. The same thread
// settles the snapshotters every minute (snapshot::Snapshotter::Settle:
// one syncfs for what was committed since, so a long-running server does
// not leave its unpacks unsynced until it restarts). Internal to criimage.
//
// Thread-safety: Request may be called from any thread.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "snapshot/snapshotter.h"
#include "store/content_store.h"
#include "store/metadata.h"
#include "upkeep/gc.h"

namespace criimage {

class Reclaimer {
 public:
  // Called on the reclaimer's thread with the report of each collection
  // that finished (the server's metrics count it).
  using OnCollected = std::function<void(const upkeep::GcReport&)>;
  // REQUIRES: the arguments outlive the Reclaimer. `on_collected` may be
  // empty.
  Reclaimer(store::ContentStore& content, store::MetadataDb& db,
            std::vector<snapshot::Snapshotter*> snapshotters, OnCollected on_collected = {});
  ~Reclaimer();  // cancels a collection in progress and joins the thread

  void Request();
  // Collections finished so far (tests and logs).
  int runs() const { return runs_.load(); }

 private:
  void Loop();
  store::ContentStore& content_;
  store::MetadataDb& db_;
  std::vector<snapshot::Snapshotter*> snapshotters_;
  OnCollected on_collected_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false;  // guarded by mu_
  std::atomic<bool> stop_{false};
  std::atomic<int> runs_{0};
  std::thread thread_;
};

}  // namespace criimage
