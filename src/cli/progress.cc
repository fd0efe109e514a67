#include "cli/progress.h"

#include <poll.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace cli {
namespace {

const char* KindName(image::PullEvent::Kind k) {
  using K = image::PullEvent::Kind;
  switch (k) {
    case K::kResolved:
      return "resolved";
    case K::kLayerStart:
      return "layer-start";
    case K::kLayerProgress:
      return "layer-progress";
    case K::kLayerDone:
      return "layer-done";
    case K::kDone:
      return "done";
    case K::kError:
      return "error";
    case K::kLayerUnpack:
      return "layer-unpack";
  }
  return "unknown";
}

}  // namespace

ProgressMode DetectProgressMode(FILE* out) {
  return ::isatty(fileno(out)) ? ProgressMode::kTty : ProgressMode::kPlain;
}

std::string HumanBytes(int64_t n) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0)
    snprintf(buf, sizeof buf, "%lld %s", static_cast<long long>(n), units[0]);
  else
    snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

std::string ProgressPrinter::LayerLine(const Layer& l) const {
  std::string line = l.id + ": ";
  using S = image::LayerState;
  if (l.state == S::kExists) return line + "already exists";
  if (l.state == S::kDone) return line + "done " + HumanBytes(l.total);
  if (l.state == S::kUnpacked) return line + "unpacked";
  if (l.state == S::kUnpacking) {
    int pct = l.total > 0 ? static_cast<int>(l.unpacked * 100 / l.total) : 0;
    return line + "unpacking " + std::to_string(pct) + "% (" + HumanBytes(l.unpacked) + "/" +
           HumanBytes(l.total) + ")";
  }
  line += image::LayerStateName(l.state);
  if (l.total > 0) {
    line += " " + HumanBytes(l.current) + "/" + HumanBytes(l.total);
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - l.started).count();
    if (secs > 0.2 && l.current > 0)
      line += " " + HumanBytes(static_cast<int64_t>(static_cast<double>(l.current) / secs)) + "/s";
  }
  return line;
}

void ProgressPrinter::Redraw(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  std::string s;
  if (drawn_lines_ > 0) s += "\033[" + std::to_string(drawn_lines_) + "A";
  for (const auto& id : order_) s += "\r\033[2K" + LayerLine(layers_.at(id)) + "\n";
  drawn_lines_ = static_cast<int>(order_.size());
  fputs(s.c_str(), out_);
  Flush();
}

void ProgressPrinter::Flush() {
  if (closed_) return;
  if (fflush(out_) == 0 && !ferror(out_)) return;
  closed_ = true;
  // The failed write may have been an earlier buffered one, whose errno is
  // long gone: ask the descriptor. The write end of a pipe (or a socket)
  // polls POLLERR or POLLHUP once its reader is gone; a full disk does not.
  struct pollfd p {
    .fd = fileno(out_), .events = 0, .revents = 0
  };
  if (on_reader_gone_ && ::poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)) != 0)
    on_reader_gone_();
}

void ProgressPrinter::OnEvent(const image::PullEvent& e) {
  using K = image::PullEvent::Kind;
  if (mode_ == ProgressMode::kQuiet || closed_) return;
  if (mode_ == ProgressMode::kJson) {
    nlohmann::json j = {{"event", KindName(e.kind)}, {"ref", e.ref}};
    if (e.digest) j["digest"] = e.digest->str();
    if (e.kind == K::kLayerStart || e.kind == K::kLayerProgress || e.kind == K::kLayerDone ||
        e.kind == K::kLayerUnpack) {
      j["current"] = e.current;
      j["total"] = e.total;
      j["state"] = image::LayerStateName(e.state);
    }
    if (e.kind == K::kResolved) {
      auto arr = nlohmann::json::array();
      for (const auto& l : e.layers)
        arr.push_back({{"digest", l.digest.str()}, {"size", l.size}, {"mediaType", l.media_type}});
      j["layers"] = arr;
    }
    if (e.kind == K::kDone) j["bytes_downloaded"] = e.current;
    if (e.kind == K::kError) j["message"] = e.message;
    fputs((j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n").c_str(), out_);
    Flush();
    return;
  }
  std::string id = e.digest ? std::string(e.digest->short_hex()) : "";
  switch (e.kind) {
    case K::kResolved:
      fprintf(out_, "%s: resolved to manifest %s (%zu layers)\n", e.ref.c_str(),
              e.digest ? e.digest->str().c_str() : "?", e.layers.size());
      if (mode_ == ProgressMode::kTty)
        for (const auto& l : e.layers) {
          std::string lid(l.digest.short_hex());
          if (layers_.count(lid)) continue;
          order_.push_back(lid);
          layers_[lid] =
              Layer{lid, image::LayerState::kWaiting, 0, l.size, std::chrono::steady_clock::now()};
        }
      break;
    case K::kLayerStart:
    case K::kLayerProgress:
    case K::kLayerDone: {
      if (mode_ == ProgressMode::kPlain) {
        if (e.kind == K::kLayerDone)
          fprintf(out_, "%s: %s\n", id.c_str(),
                  e.state == image::LayerState::kExists ? "already exists"
                                                        : ("done " + HumanBytes(e.total)).c_str());
        else if (e.state == image::LayerState::kResumed)
          fprintf(out_, "%s: resuming at %s of %s\n", id.c_str(), HumanBytes(e.current).c_str(),
                  HumanBytes(e.total).c_str());
        break;
      }
      if (!layers_.count(id)) {
        // The config blob is fetched before the layers are listed.
        order_.push_back(id);
        layers_[id] = Layer{id, e.state, e.current, e.total, std::chrono::steady_clock::now()};
      }
      auto& l = layers_[id];
      if (l.state == image::LayerState::kWaiting && e.state != image::LayerState::kWaiting)
        l.started = std::chrono::steady_clock::now();
      l.state = e.state;
      l.current = e.current;
      l.total = e.total;
      Redraw(e.kind != K::kLayerProgress);
      break;
    }
    case K::kDone:
      if (mode_ == ProgressMode::kTty) Redraw(true);
      fprintf(out_, "Digest: %s\n", e.digest ? e.digest->str().c_str() : "?");
      fprintf(out_, "Downloaded: %s\n", HumanBytes(e.current).c_str());
      break;
    case K::kError:
      if (mode_ == ProgressMode::kTty) Redraw(true);
      break;
    case K::kLayerUnpack: {
      const bool edge =
          e.state != image::LayerState::kUnpacking || e.current == 0;  // a layer's start or end
      if (mode_ == ProgressMode::kPlain) {
        if (edge)
          fprintf(out_, "%s: %s\n", id.c_str(),
                  std::string(image::LayerStateName(e.state)).c_str());
        break;
      }
      auto it = layers_.find(id);
      if (it == layers_.end()) break;  // not a layer of this pull's display
      it->second.state = e.state;
      it->second.unpacked = e.current;
      Redraw(edge);
      break;
    }
  }
  Flush();
}

}  // namespace cli
