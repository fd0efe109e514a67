#include "cli/unpack_step.h"

#include "cli/progress.h"
#include "registry/manifest.h"

namespace cli {
namespace {

void PrintSummary(FILE* out, const std::string& name, const snapshot::Snapshotter& sn,
                  const image::UnpackResult& r) {
  if (out == nullptr) return;
  std::string top = r.chain_ids.empty() ? "(no layers)" : r.chain_ids.back().str();
  if (r.layers_applied == 0)
    fprintf(out, "%s: already unpacked (%s, chain %s)\n", name.c_str(),
            std::string(snapshot::KindName(sn.kind())).c_str(), top.c_str());
  else
    fprintf(out, "%s: unpacked %d layer(s), %s, into %s snapshots (chain %s)\n", name.c_str(),
            r.layers_applied, HumanBytes(r.bytes_unpacked).c_str(),
            std::string(snapshot::KindName(sn.kind())).c_str(), top.c_str());
}

}  // namespace

common::Result<image::UnpackResult> UnpackNamed(const GlobalOptions& global, OpenedStore& s,
                                                const std::string& name, FILE* out,
                                                const std::atomic<bool>* cancel) {
  ASSIGN_OR_RETURN(auto sn, OpenSnapshotter(global));
  ASSIGN_OR_RETURN(store::ImageRecord rec, s.metadata->GetImage(name));
  image::UnpackOptions opts{.snapshotter = sn.get(), .metadata = s.metadata.get(), .cancel = cancel};
  ASSIGN_OR_RETURN(image::UnpackResult r, image::Unpack(*s.content, opts, rec));
  PrintSummary(out, name, *sn, r);
  return r;
}

// ---- PullUnpack -------------------------------------------------------------------

common::Result<std::unique_ptr<PullUnpack>> PullUnpack::Start(const GlobalOptions& global,
                                                              OpenedStore& s,
                                                              const std::atomic<bool>* cancel,
                                                              std::function<void(const registry::PullEvent&)> on_event) {
  ASSIGN_OR_RETURN(auto sn, OpenSnapshotter(global));
  std::unique_ptr<PullUnpack> u(new PullUnpack(s, std::move(sn), cancel, std::move(on_event)));
  u->worker_ = std::thread([p = u.get()] { p->Work(); });
  return u;
}

PullUnpack::~PullUnpack() {
  StopWaiting();
  if (worker_.joinable()) worker_.join();
}

void PullUnpack::StopWaiting() {
  {
    std::lock_guard l(mu_);
    pull_over_ = true;
  }
  cv_.notify_all();
}

common::Status PullUnpack::WaitForLayers() {
  // Every blob has had its layer-done event: the worker does not wait for
  // any more and finishes.
  if (worker_.joinable()) worker_.join();
  if (early_ && !*early_) return std::unexpected(early_->error());
  return {};
}

void PullUnpack::OnEvent(const registry::PullEvent& e) {
  using Kind = registry::PullEvent::Kind;
  {
    std::lock_guard l(mu_);
    if (e.kind == Kind::kResolved && !resolved_ && e.config) {
      resolved_ = true;
      layers_ = e.layers;
      config_ = *e.config;
    } else if (e.kind == Kind::kLayerDone && e.digest) {
      ready_.insert(e.digest->str());
    } else {
      return;
    }
  }
  cv_.notify_all();
}

common::Status PullUnpack::WaitForBlob(const common::Digest& blob) {
  std::unique_lock l(mu_);
  cv_.wait(l, [&] { return ready_.contains(blob.str()) || pull_over_; });
  if (ready_.contains(blob.str())) return {};
  return common::MakeError(common::Errc::kCancelled,
                           "the pull stopped before blob " + blob.str() + " was fetched");
}

void PullUnpack::Work() {
  std::vector<store::Descriptor> layers;
  store::Descriptor config;
  {
    std::unique_lock l(mu_);
    cv_.wait(l, [&] { return resolved_ || pull_over_; });
    if (!resolved_) return;  // Finish unpacks it all
    layers = layers_;
    config = *config_;
  }
  early_ = UnpackEarly(std::move(layers), std::move(config));
}

common::Result<image::UnpackResult> PullUnpack::UnpackEarly(std::vector<store::Descriptor> layers,
                                                            store::Descriptor config) {
  TRY(WaitForBlob(config.digest));
  image::ImageParts parts;
  {
    // The config's bytes (up to 16 MiB) are not kept for the unpack.
    ASSIGN_OR_RETURN(std::string body, s_.content->ReadBlob(config.digest));
    ASSIGN_OR_RETURN(parts.config,
                     common::Wrap(registry::ParseImageConfig(body), "config " + config.digest.str()));
  }
  parts.manifest.config = std::move(config);
  parts.manifest.layers = std::move(layers);
  // A config that does not match the manifest fails the pull itself.
  if (parts.config.diff_ids.size() != parts.manifest.layers.size()) return image::UnpackResult{};
  parts.chain_ids = registry::ChainIds(parts.config.diff_ids);
  image::UnpackOptions opts{.snapshotter = sn_.get(),
                            .metadata = s_.metadata.get(),
                            .cancel = cancel_,
                            .wait_for_blob = [this](const common::Digest& d) { return WaitForBlob(d); },
                            .on_event = on_event_};
  return image::UnpackLayers(*s_.content, opts, parts);
}

common::Result<image::UnpackResult> PullUnpack::Finish(bool pulled, const std::string& name,
                                                       FILE* out) {
  StopWaiting();
  if (worker_.joinable()) worker_.join();
  if (!pulled) return image::UnpackResult{};
  int applied = 0;
  int64_t bytes = 0;
  if (early_) {
    if (!*early_) return std::unexpected(std::move(early_->error()).Wrap("unpack " + name));
    applied = (*early_)->layers_applied;
    bytes = (*early_)->bytes_unpacked;
  }
  image::UnpackOptions opts{.snapshotter = sn_.get(), .metadata = s_.metadata.get(), .cancel = cancel_};
  ASSIGN_OR_RETURN(image::UnpackResult r, image::UnpackRecorded(*s_.content, opts, name));
  r.layers_applied += applied;
  r.bytes_unpacked += bytes;
  PrintSummary(out, name, *sn_, r);
  return r;
}

}  // namespace cli
