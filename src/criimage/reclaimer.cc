#include "criimage/reclaimer.h"

#include <chrono>

#include "common/log.h"
#include "upkeep/gc.h"

namespace criimage {

Reclaimer::Reclaimer(store::ContentStore& content, store::MetadataDb& db,
                     std::vector<snapshot::Snapshotter*> snapshotters, OnCollected on_collected)
    : content_(content),
      db_(db),
      snapshotters_(std::move(snapshotters)),
      on_collected_(std::move(on_collected)) {
  thread_ = std::thread([this] { Loop(); });
}

Reclaimer::~Reclaimer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Reclaimer::Request() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = true;
  }
  cv_.notify_all();
}

void Reclaimer::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      bool woken = cv_.wait_for(lock, std::chrono::minutes(1), [&] { return pending_ || stop_; });
      if (stop_) return;
      if (!woken) {
        lock.unlock();
        for (snapshot::Snapshotter* sn : snapshotters_)
          if (auto st = sn->Settle(); !st)
            LOG(Warn) << "settle snapshots" << common::Kv("error", st.error().message);
        continue;
      }
      pending_ = false;
    }
    // Waits for the exclusive store lock: pulls in flight finish first.
    auto r = upkeep::Prune(content_, db_, snapshotters_, {.cancel = &stop_});
    if (!r) {
      LOG(Warn) << "free removed images" << common::Kv("error", r.error().message);
    } else {
      for (const auto& e : r->errors) LOG(Warn) << "free removed images" << common::Kv("error", e);
      LOG(Info) << "freed removed images" << common::Kv("bytes", r->total_bytes())
                << common::Kv("blobs", r->blobs.size())
                << common::Kv("snapshots", r->snapshots.size());
      if (on_collected_) on_collected_(*r);
    }
    ++runs_;
  }
}

}  // namespace criimage
