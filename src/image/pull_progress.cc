#include "image/pull_progress.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"

namespace image {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

common::Result<PullProgress> FromJson(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return common::MakeError(common::Errc::kDataLoss, "progress record is not a JSON object");
  PullProgress p;
  p.image = j.value("image", "");
  p.phase = j.value("phase", "");
  p.pid = j.value("pid", 0);
  p.started_ns = j.value("started_ns", int64_t{0});
  p.updated_ns = j.value("updated_ns", int64_t{0});
  p.bytes_per_second = j.value("bytes_per_second", 0.0);
  p.error = j.value("error", "");
  if (auto it = j.find("layers"); it != j.end() && it->is_array()) {
    for (const auto& l : *it) {
      if (!l.is_object()) continue;
      p.layers.push_back({l.value("digest", ""), l.value("current", int64_t{0}),
                          l.value("total", int64_t{0}), l.value("state", ""),
                          l.value("unpacked", int64_t{0})});
    }
  }
  return p;
}

}  // namespace

nlohmann::json ProgressJson(const PullProgress& p) {
  auto layers = nlohmann::json::array();
  for (const auto& l : p.layers)
    layers.push_back({{"digest", l.digest}, {"current", l.current}, {"total", l.total},
                      {"state", l.state}, {"unpacked", l.unpacked}});
  return {{"image", p.image},       {"phase", p.phase},
          {"pid", p.pid},           {"started_ns", p.started_ns},
          {"updated_ns", p.updated_ns}, {"layers", layers},
          {"bytes_per_second", p.bytes_per_second}, {"error", p.error}};
}

int64_t PullProgress::current_bytes() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.current;
  return n;
}

int64_t PullProgress::total_bytes() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.total;
  return n;
}

int64_t PullProgress::eta_seconds() const {
  if (phase == "done") return 0;
  int64_t left = total_bytes() - current_bytes();
  if (layers.empty() || left < 0 || bytes_per_second <= 0) return -1;
  return static_cast<int64_t>(static_cast<double>(left) / bytes_per_second + 0.5);
}

std::filesystem::path ProgressPath(const std::filesystem::path& root, const std::string& image) {
  return root / "progress" / (common::Digest::Sha256Of(image).hex() + ".json");
}

ProgressRecorder::ProgressRecorder(std::filesystem::path root, std::string image,
                                   std::chrono::milliseconds interval)
    : root_(std::move(root)), interval_(interval) {
  p_.image = std::move(image);
  p_.phase = "resolving";
  p_.pid = ::getpid();
  p_.started_ns = NowNs();
  rate_at_ = std::chrono::steady_clock::now();
  Write();
}

void ProgressRecorder::OnEvent(const registry::PullEvent& e) {
  using Kind = registry::PullEvent::Kind;
  bool now = false;
  switch (e.kind) {
    case Kind::kResolved:
      p_.phase = "downloading";
      p_.layers.clear();
      index_.clear();
      for (const auto& d : e.layers) {
        index_[d.digest.str()] = p_.layers.size();
        p_.layers.push_back({d.digest.str(), 0, d.size, "waiting"});
      }
      now = true;
      break;
    case Kind::kLayerStart:
    case Kind::kLayerProgress:
    case Kind::kLayerDone: {
      if (!e.digest) return;
      auto it = index_.find(e.digest->str());
      if (it == index_.end()) return;  // the config blob: not a layer
      LayerProgress& l = p_.layers[it->second];
      l.current = e.current;
      if (e.total > 0) l.total = e.total;
      if (!e.state.empty()) l.state = e.state;
      now = e.kind != Kind::kLayerProgress;
      break;
    }
    case Kind::kLayerUnpack: {
      if (!e.digest) return;
      auto it = index_.find(e.digest->str());
      if (it == index_.end()) return;
      LayerProgress& l = p_.layers[it->second];
      l.unpacked = e.current;
      l.state = e.state;
      // The start and end of a layer's unpack are written at once.
      now = e.state != "unpacking" || e.current == 0;
      break;
    }
    case Kind::kDone:
    case Kind::kError:
      return;  // Finish() writes the end
  }
  auto t = std::chrono::steady_clock::now();
  if (now || t - last_write_ >= interval_) Write();
}

void ProgressRecorder::SetPhase(std::string phase) {
  p_.phase = std::move(phase);
  Write();
}

void ProgressRecorder::Finish(const common::Status& result) {
  p_.phase = result ? "done" : "failed";
  if (!result) p_.error = result.error().message;
  if (result)
    for (auto& l : p_.layers) l.current = l.total;
  Write();
}

void ProgressRecorder::Write() {
  auto t = std::chrono::steady_clock::now();
  // The rate over the last second or so: bytes held now against the
  // previous sample, smoothed so a burst does not swing the ETA.
  const double dt = std::chrono::duration<double>(t - rate_at_).count();
  const int64_t cur = p_.current_bytes();
  if (dt >= 0.5) {
    const double inst = static_cast<double>(cur - rate_bytes_) / dt;
    p_.bytes_per_second = p_.bytes_per_second <= 0 ? inst : 0.5 * p_.bytes_per_second + 0.5 * inst;
    if (p_.bytes_per_second < 0) p_.bytes_per_second = 0;
    rate_at_ = t;
    rate_bytes_ = cur;
  }
  last_write_ = t;
  p_.updated_ns = NowNs();
  const auto path = ProgressPath(root_, p_.image);
  // Not AtomicWriteFile: the record is advisory and rewritten several times
  // a second, so it is renamed into place without fsync.
  auto st = [&]() -> common::Status {
    TRY(common::MkdirAll(path.parent_path()));
    const auto tmp = path.string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                     std::to_string(reinterpret_cast<uintptr_t>(this));
    {
      common::UniqueFd fd;
      ASSIGN_OR_RETURN(fd, common::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
      TRY(common::WriteAll(fd.get(), ProgressJson(p_).dump()));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      auto err = common::ErrnoError("rename `" + tmp + "`");
      ::unlink(tmp.c_str());
      return err;
    }
    return {};
  }();
  if (!st) LOG(Debug) << "pull progress not recorded" << common::Kv("error", st.error().message);
}

common::Result<std::optional<PullProgress>> ReadPullProgress(const std::filesystem::path& root,
                                                             const std::string& image) {
  auto text = common::ReadFile(ProgressPath(root, image), 1u << 20);
  if (!text) {
    if (text.error().code == common::Errc::kNotFound) return std::optional<PullProgress>{};
    return std::unexpected(text.error().Wrap("read pull progress of `" + image + "`"));
  }
  auto p = FromJson(*text);
  if (!p) return std::unexpected(p.error().Wrap("read pull progress of `" + image + "`"));
  return std::optional<PullProgress>(std::move(*p));
}

bool InProgress(const PullProgress& p) { return !p.terminal() && ProcessAlive(p.pid); }

common::Status WatchPullProgress(const std::filesystem::path& root, const std::string& image,
                                 const WatchOptions& options,
                                 const std::function<bool()>& cancelled,
                                 const std::function<bool(const PullProgress&)>& on_update) {
  const int64_t watch_start = NowNs();
  bool attached = false;
  int64_t last_seen = -1;
  for (;;) {
    if (cancelled && cancelled())
      return common::MakeError(common::Errc::kCancelled, "watch `" + image + "`: cancelled");
    ASSIGN_OR_RETURN(std::optional<PullProgress> p, ReadPullProgress(root, image));
    if (!attached) {
      // A finished record counts only when it finished after the watch
      // began (a pull that ended between two polls).
      const bool live = p && (InProgress(*p) || (p->terminal() && p->updated_ns >= watch_start));
      if (live) {
        attached = true;
      } else if (!options.wait) {
        return common::MakeError(common::Errc::kNotFound,
                                 "no pull of `" + image + "` in progress");
      }
    }
    if (attached) {
      if (!p) {
        // Removed under us (the store was wiped): nothing more to follow.
        return common::MakeError(common::Errc::kNotFound,
                                 "pull of `" + image + "`: progress record removed");
      }
      if (p->updated_ns != last_seen) {
        last_seen = p->updated_ns;
        if (!on_update(*p))
          return common::MakeError(common::Errc::kCancelled, "watch `" + image + "`: cancelled");
        if (p->terminal()) return {};
      }
      if (!p->terminal() && !ProcessAlive(p->pid)) {
        PullProgress dead = *p;
        dead.phase = "failed";
        dead.error = "the pulling process (pid " + std::to_string(p->pid) + ") exited";
        on_update(dead);
        return {};
      }
    }
    std::this_thread::sleep_for(options.poll);
  }
}

}  // namespace image
