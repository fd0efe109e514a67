#pragma once
// Rendering pull events: docker-style per-layer lines redrawn in place on a
// terminal ("downloading 1.2 MB/3.4 MB", then "unpacking 45%"), one JSON
// object per line with --json (docs/pull-progress.md), plain lines
// otherwise. Not thread-safe by itself: the caller serialises events (the
// puller's and the unpacker's).

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "image/fetch.h"

namespace cli {

enum class ProgressMode { kTty, kPlain, kJson, kQuiet };

// kTty when `out` is a terminal, kPlain otherwise.
ProgressMode DetectProgressMode(FILE* out);

class ProgressPrinter {
 public:
  // `on_reader_gone` (may be empty) is called once when a write to `out`
  // fails with EPIPE (SIGPIPE ignored); nothing is written after that.
  ProgressPrinter(ProgressMode mode, FILE* out, std::function<void()> on_reader_gone = {})
      : mode_(mode), out_(out), on_reader_gone_(std::move(on_reader_gone)) {}
  void OnEvent(const image::PullEvent& e);

 private:
  struct Layer {
    std::string id;  // short digest
    image::LayerState state = image::LayerState::kNone;
    int64_t current = 0, total = 0;
    std::chrono::steady_clock::time_point started;
    int64_t unpacked = 0;  // bytes of the blob unpacked, in state kUnpacking
  };
  void Redraw(bool force);
  void Flush();
  std::string LayerLine(const Layer& l) const;

  ProgressMode mode_;
  FILE* out_;
  std::function<void()> on_reader_gone_;
  bool closed_ = false;  // a write failed; write nothing more
  std::vector<std::string> order_;
  std::map<std::string, Layer> layers_;
  int drawn_lines_ = 0;
  std::chrono::steady_clock::time_point last_draw_{};
};

// Human units: "1.2 MB", "512 B".
std::string HumanBytes(int64_t n);

}  // namespace cli
