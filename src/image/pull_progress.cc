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

// A 4 MiB manifest lists at most about 35,000 layers, whose record is
// about 5 MB.
constexpr size_t kMaxRecordSize = 8u << 20;

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
  const std::string phase = j.value("phase", "");
  auto named = PullPhaseNamed(phase);
  if (!named)
    return common::MakeError(common::Errc::kDataLoss,
                             "progress record: unknown phase `" + phase + "`");
  p.phase = *named;
  p.pid = j.value("pid", 0);
  p.started_ns = j.value("started_ns", int64_t{0});
  p.updated_ns = j.value("updated_ns", int64_t{0});
  p.bytes_per_second = j.value("bytes_per_second", 0.0);
  p.error = j.value("error", "");
  if (auto it = j.find("layers"); it != j.end() && it->is_array()) {
    for (const auto& l : *it) {
      if (!l.is_object()) continue;
      const std::string state = l.value("state", "");
      auto s = LayerStateNamed(state);
      if (!s)
        return common::MakeError(common::Errc::kDataLoss,
                                 "progress record: unknown layer state `" + state + "`");
      p.layers.push_back({l.value("digest", ""), l.value("current", int64_t{0}),
                          l.value("total", int64_t{0}), *s, l.value("unpacked", int64_t{0})});
    }
  }
  return p;
}

nlohmann::json LayerJson(const LayerProgress& l) {
  return {{"digest", l.digest},
          {"current", l.current},
          {"total", l.total},
          {"state", LayerStateName(l.state)},
          {"unpacked", l.unpacked}};
}

// Every field of the record but `layers`.
nlohmann::json HeadJson(const PullProgress& p) {
  return {{"image", p.image},
          {"phase", PullPhaseName(p.phase)},
          {"pid", p.pid},
          {"started_ns", p.started_ns},
          {"updated_ns", p.updated_ns},
          {"bytes_per_second", p.bytes_per_second},
          {"error", p.error}};
}

}  // namespace

std::string_view PullPhaseName(PullPhase p) {
  switch (p) {
    case PullPhase::kResolving:
      return "resolving";
    case PullPhase::kDownloading:
      return "downloading";
    case PullPhase::kUnpacking:
      return "unpacking";
    case PullPhase::kDone:
      return "done";
    case PullPhase::kFailed:
      return "failed";
  }
  return "";
}

std::optional<PullPhase> PullPhaseNamed(std::string_view name) {
  for (PullPhase p : {PullPhase::kResolving, PullPhase::kDownloading, PullPhase::kUnpacking,
                      PullPhase::kDone, PullPhase::kFailed})
    if (PullPhaseName(p) == name) return p;
  return std::nullopt;
}

nlohmann::json ProgressJson(const PullProgress& p) {
  nlohmann::json j = HeadJson(p);
  auto layers = nlohmann::json::array();
  for (const auto& l : p.layers) layers.push_back(LayerJson(l));
  j["layers"] = std::move(layers);
  return j;
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
  if (phase == PullPhase::kDone) return 0;
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
  p_.phase = PullPhase::kResolving;
  p_.pid = ::getpid();
  p_.started_ns = NowNs();
  rate_at_ = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    Write();
  }
  thread_ = std::thread([this] { WriteHeld(); });
}

ProgressRecorder::~ProgressRecorder() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool ProgressRecorder::Apply(const PullEvent& e) {
  using Kind = PullEvent::Kind;
  switch (e.kind) {
    case Kind::kResolved:
      p_.phase = PullPhase::kDownloading;
      p_.layers.clear();
      index_.clear();
      for (const auto& d : e.layers) {
        index_[d.digest.str()] = p_.layers.size();
        p_.layers.push_back({d.digest.str(), 0, d.size, LayerState::kWaiting});
      }
      layer_text_.assign(p_.layers.size(), std::string());
      changed_.assign(p_.layers.size(), true);
      changed_list_.clear();
      for (size_t i = 0; i < p_.layers.size(); ++i) changed_list_.push_back(i);
      return true;
    case Kind::kLayerStart:
    case Kind::kLayerProgress:
    case Kind::kLayerDone: {
      if (!e.digest) return false;
      auto it = index_.find(e.digest->str());
      if (it == index_.end()) return false;  // the config blob: not a layer
      LayerProgress& l = p_.layers[it->second];
      l.current = e.current;
      if (e.total > 0) l.total = e.total;
      if (e.state != LayerState::kNone) l.state = e.state;
      Changed(it->second);
      return true;
    }
    case Kind::kLayerUnpack: {
      if (!e.digest) return false;
      auto it = index_.find(e.digest->str());
      if (it == index_.end()) return false;
      LayerProgress& l = p_.layers[it->second];
      l.unpacked = e.current;
      // A layer applied as it downloads keeps its download's state until
      // the download is over ("unpacked" always comes after it).
      const bool downloading = l.state == LayerState::kWaiting ||
                               l.state == LayerState::kDownloading ||
                               l.state == LayerState::kResumed;
      if (!downloading || e.state == LayerState::kUnpacked) l.state = e.state;
      Changed(it->second);
      return true;
    }
    case Kind::kDone:
    case Kind::kError:
      return false;  // Finish() writes the end
  }
  return false;
}

void ProgressRecorder::OnEvent(const PullEvent& e) {
  std::lock_guard lock(mu_);
  if (finished_ || !Apply(e)) return;
  if (std::chrono::steady_clock::now() - last_write_ >= interval_) {
    Write();
  } else if (!held_) {
    held_ = true;
    cv_.notify_one();
  }
}

void ProgressRecorder::WriteHeld() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (!held_) {
      cv_.wait(lock);
      continue;
    }
    const auto due = last_write_ + interval_;
    if (std::chrono::steady_clock::now() < due) {
      cv_.wait_until(lock, due);
      continue;
    }
    Write();
  }
}

void ProgressRecorder::SetPhase(PullPhase phase) {
  std::lock_guard lock(mu_);
  if (finished_) return;
  p_.phase = phase;
  Write();
}

void ProgressRecorder::Finish(const common::Status& result) {
  std::lock_guard lock(mu_);
  if (finished_) return;
  finished_ = true;
  p_.phase = result ? PullPhase::kDone : PullPhase::kFailed;
  if (!result) p_.error = result.error().message;
  if (result) {
    for (size_t i = 0; i < p_.layers.size(); ++i) {
      p_.layers[i].current = p_.layers[i].total;
      Changed(i);
    }
  }
  Write();
}

void ProgressRecorder::Changed(size_t layer) {
  if (changed_[layer]) return;
  changed_[layer] = true;
  changed_list_.push_back(layer);
}

std::string ProgressRecorder::RecordText() {
  // An error may carry a hostile layer's bytes (entry names need not be
  // UTF-8): they are replaced (U+FFFD), not thrown.
  for (size_t i : changed_list_) {
    layer_text_[i] =
        LayerJson(p_.layers[i]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    changed_[i] = false;
  }
  changed_list_.clear();
  const std::string head =
      HeadJson(p_).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  size_t size = head.size() + 16;
  for (const auto& l : layer_text_) size += l.size() + 1;
  std::string text;
  text.reserve(size);
  text.append(head, 0, head.size() - 1);  // without its closing brace
  text += ",\"layers\":[";
  for (size_t i = 0; i < layer_text_.size(); ++i) {
    if (i > 0) text += ',';
    text += layer_text_[i];
  }
  text += "]}";
  return text;
}

int64_t ProgressRecorder::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
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
  held_ = false;
  ++writes_;
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
      TRY(common::WriteAll(fd.get(), RecordText()));
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
  auto text = common::ReadFile(ProgressPath(root, image), kMaxRecordSize);
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
        return common::MakeError(common::Errc::kNotFound, "no pull of `" + image + "` in progress");
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
        dead.phase = PullPhase::kFailed;
        dead.error = "the pulling process (pid " + std::to_string(p->pid) + ") exited";
        on_update(dead);
        return {};
      }
    }
    std::this_thread::sleep_for(options.poll);
  }
}

}  // namespace image
