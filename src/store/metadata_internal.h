#pragma once
// Internal to the store module: the state behind a MetadataDb, shared by
// metadata.cc (open, migrations, transactions) and metadata_ops.cc (the
// operations).

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "store/metadata.h"
#include "store/sqlite.h"

namespace store {

struct MetadataDbState {
  std::mutex mu;
  SqliteDb db;
  std::filesystem::path root;  // the store root: lease holds live under it
  MetadataDb::Clock now;
  // The thread inside a Txn, so that a nested Begin on that thread fails
  // instead of deadlocking on `mu`.
  std::atomic<std::thread::id> txn_owner{};

  int64_t NowNs() const {
    auto t = now ? now() : std::chrono::system_clock::now();
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }
};

// A name as messages quote it: `name`.
inline std::string Quoted(std::string_view s) { return "`" + std::string(s) + "`"; }

}  // namespace store
