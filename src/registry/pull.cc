#include "registry/pull.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "common/log.h"

namespace registry {
namespace {

using common::Errc;
using common::MakeError;
using std::chrono::steady_clock;

constexpr int64_t kMaxConfigSize = 16 << 20;

// Serialises event delivery: callers' callbacks need not be thread-safe.
class Events {
 public:
  Events(const PullOptions& o, std::string ref) : fn_(o.on_event), ref_(std::move(ref)) {}
  void Emit(PullEvent e) {
    if (!fn_) return;
    e.ref = ref_;
    std::lock_guard lk(mu_);
    fn_(e);
  }

 private:
  std::function<void(const PullEvent&)> fn_;
  std::string ref_;
  std::mutex mu_;
};

// Adapts a store ingest to the client's sink, with progress and
// cancellation from the caller.
class IngestSink final : public BlobSink {
 public:
  IngestSink(store::Ingest& ingest, const store::Descriptor& desc, Events& events,
             const PullOptions& options, std::atomic<int64_t>& downloaded)
      : ingest_(ingest), desc_(desc), events_(events), options_(options), downloaded_(downloaded) {}

  int64_t offset() const override { return ingest_.offset(); }

  common::Status Write(std::span<const std::byte> data) override {
    if (options_.cancel != nullptr && options_.cancel->load())
      return MakeError(Errc::kCancelled, "pull cancelled");
    TRY(ingest_.Write(data));
    downloaded_ += static_cast<int64_t>(data.size());
    auto now = steady_clock::now();
    if (now - last_event_ >= options_.progress_interval) {
      last_event_ = now;
      events_.Emit({.kind = PullEvent::Kind::kLayerProgress, .digest = desc_.digest,
                    .current = ingest_.offset(), .total = desc_.size, .state = "downloading"});
    }
    return {};
  }

  common::Status Restart() override {
    LOG(Warn) << "server ignored the Range request; restarting blob"
              << common::Kv("digest", desc_.digest.str());
    downloaded_ -= ingest_.offset();
    return ingest_.Restart();
  }

 private:
  store::Ingest& ingest_;
  const store::Descriptor& desc_;
  Events& events_;
  const PullOptions& options_;
  std::atomic<int64_t>& downloaded_;
  steady_clock::time_point last_event_{};
};

store::Descriptor Describe(const FetchedManifest& m) {
  store::Descriptor d;
  d.media_type = m.media_type;
  d.digest = m.digest;
  d.size = static_cast<int64_t>(m.body.size());
  return d;
}

class Puller {
 public:
  Puller(store::ContentStore& content, store::MetadataDb& metadata, ImageSource& src,
         const std::string& name, const PullOptions& options)
      : content_(content), metadata_(metadata), src_(src), name_(name), options_(options),
        events_(options, name) {}

  common::Result<PullResult> Run() {
    ASSIGN_OR_RETURN(std::string lease, metadata_.CreateLease(std::chrono::hours(24)));
    auto r = RunLeased(lease);
    // The image record (written on success) now protects the content; the
    // lease is only for the pull in progress.
    if (auto st = metadata_.DeleteLease(lease); !st)
      LOG(Warn) << "delete lease failed" << common::Kv("lease", lease)
                << common::Kv("error", st.error().message);
    if (!r) events_.Emit({.kind = PullEvent::Kind::kError, .message = r.error().message});
    return r;
  }

 private:
  common::Result<PullResult> RunLeased(const std::string& lease) {
    lease_ = lease;
    PullResult out;
    out.name = name_;
    ASSIGN_OR_RETURN(FetchedManifest top, src_.ResolveTop());
    ASSIGN_OR_RETURN(ManifestKind kind, ClassifyManifest(top.media_type));
    out.target = Describe(top);
    TRY(StoreSmall(out.target, top.body));

    FetchedManifest mf = std::move(top);
    Platform want = options_.platform.value_or(HostPlatform());
    if (kind == ManifestKind::kIndex) {
      ASSIGN_OR_RETURN(Index idx, ParseIndex(mf.body, mf.media_type));
      auto entry = SelectPlatform(idx, want);
      if (!entry) return std::unexpected(entry.error().Wrap(src_.Describe()));
      ASSIGN_OR_RETURN(mf, src_.GetManifest(entry->descriptor.digest, entry->descriptor.media_type));
      if (static_cast<int64_t>(mf.body.size()) != entry->descriptor.size)
        return MakeError(Errc::kDataLoss,
                         "manifest " + entry->descriptor.digest.str() + " has " +
                             std::to_string(mf.body.size()) + " bytes, the index says " +
                             std::to_string(entry->descriptor.size));
      if (mf.media_type.empty()) mf.media_type = entry->descriptor.media_type;
      out.manifest = Describe(mf);
      TRY(StoreSmall(out.manifest, mf.body));
    } else {
      out.manifest = out.target;
    }
    ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(mf.body, mf.media_type));
    if (manifest.config.size > kMaxConfigSize)
      return MakeError(Errc::kInvalidArgument, "config " + manifest.config.digest.str() + " is " +
                                                   std::to_string(manifest.config.size) +
                                                   " bytes, over the 16 MiB limit");
    out.config = manifest.config;
    out.layers = manifest.layers;
    events_.Emit({.kind = PullEvent::Kind::kResolved, .digest = out.manifest.digest,
                  .layers = out.layers});

    // The config first: it is small and says how many layers to expect.
    TRY(FetchAll({manifest.config}));
    ASSIGN_OR_RETURN(std::string config_body, content_.ReadBlob(manifest.config.digest));
    ASSIGN_OR_RETURN(out.image_config, ParseImageConfig(config_body));
    if (out.image_config.diff_ids.size() != manifest.layers.size())
      return MakeError(Errc::kInvalidArgument,
                       "image " + src_.Describe() + ": config lists " +
                           std::to_string(out.image_config.diff_ids.size()) +
                           " diff_ids but the manifest has " +
                           std::to_string(manifest.layers.size()) + " layers");
    TRY(FetchAll(manifest.layers));

    store::ImageRecord rec;
    rec.name = name_;
    rec.target = out.target;
    rec.labels[std::string(kLabelManifest)] = out.manifest.digest.str();
    rec.labels[std::string(kLabelConfig)] = out.config.digest.str();
    Platform got = out.image_config.platform.architecture.empty() ? want : out.image_config.platform;
    rec.labels[std::string(kLabelPlatform)] = NormalizePlatform(got).str();
    TRY(metadata_.PutImage(rec));
    out.bytes_downloaded = downloaded_.load();
    out.blobs_fetched = fetched_.load();
    events_.Emit({.kind = PullEvent::Kind::kDone, .digest = out.target.digest,
                  .current = out.bytes_downloaded});
    return out;
  }

  // Manifests and indexes arrive whole; they go into the store like any
  // blob, through an ingest, so the same rules hold.
  common::Status StoreSmall(const store::Descriptor& d, const std::string& body) {
    TRY(metadata_.AddLeaseResource(lease_, "content", d.digest.str()));
    if (content_.Has(d.digest)) return {};
    auto ing = content_.BeginIngest(d.digest, d.size, options_.cancel);
    if (!ing) {
      if (ing.error().code == Errc::kAlreadyExists) return {};
      return std::unexpected(ing.error());
    }
    TRY(ing->Restart());
    TRY(ing->Write(std::as_bytes(std::span(body.data(), body.size()))));
    TRY(ing->Commit());
    return metadata_.PutBlob(d.digest, d.size, d.media_type);
  }

  common::Status FetchAll(const std::vector<store::Descriptor>& descs) {
    std::deque<const store::Descriptor*> queue;
    std::set<common::Digest> seen;
    for (const auto& d : descs)
      if (seen.insert(d.digest).second) queue.push_back(&d);
    std::mutex mu;
    std::optional<common::Error> first_error;
    auto worker = [&] {
      for (;;) {
        const store::Descriptor* d;
        {
          std::lock_guard lk(mu);
          if (queue.empty() || first_error) return;
          d = queue.front();
          queue.pop_front();
        }
        auto st = FetchOne(*d);
        if (!st) {
          std::lock_guard lk(mu);
          if (!first_error) first_error = st.error();
          stop_ = true;
          return;
        }
      }
    };
    int n = std::clamp(options_.max_concurrent_downloads, 1, 64);
    n = std::min<int>(n, static_cast<int>(queue.size()));
    std::vector<std::thread> threads;
    for (int i = 1; i < n; ++i) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    if (first_error) return std::unexpected(*first_error);
    return {};
  }

  common::Status FetchOne(const store::Descriptor& d) {
    TRY(metadata_.AddLeaseResource(lease_, "content", d.digest.str()));
    events_.Emit({.kind = PullEvent::Kind::kLayerStart, .digest = d.digest, .total = d.size,
                  .state = "waiting"});
    auto exists = [&] {
      events_.Emit({.kind = PullEvent::Kind::kLayerDone, .digest = d.digest, .current = d.size,
                    .total = d.size, .state = "exists"});
      return metadata_.PutBlob(d.digest, d.size, d.media_type);
    };
    if (content_.Has(d.digest)) return exists();
    auto ing = content_.BeginIngest(d.digest, d.size, &stop_);
    if (!ing) {
      if (ing.error().code == Errc::kAlreadyExists) return exists();
      return std::unexpected(ing.error().Wrap("fetch blob " + d.digest.str()));
    }
    events_.Emit({.kind = PullEvent::Kind::kLayerProgress, .digest = d.digest,
                  .current = ing->offset(), .total = d.size,
                  .state = ing->offset() > 0 ? "resumed" : "downloading"});
    IngestSink sink(*ing, d, events_, options_, downloaded_);
    auto st = src_.FetchBlob(d.digest, d.size, sink, &stop_);
    if (!st) return std::unexpected(st.error().Wrap("fetch blob " + d.digest.str()));
    if (auto c = ing->Commit(); !c)
      return std::unexpected(c.error().Wrap("fetch blob " + d.digest.str() + " from " +
                                            src_.Describe()));
    ++fetched_;
    TRY(metadata_.PutBlob(d.digest, d.size, d.media_type));
    events_.Emit({.kind = PullEvent::Kind::kLayerDone, .digest = d.digest, .current = d.size,
                  .total = d.size, .state = "done"});
    return {};
  }

  store::ContentStore& content_;
  store::MetadataDb& metadata_;
  ImageSource& src_;
  const std::string& name_;
  const PullOptions& options_;
  Events events_;
  std::string lease_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> downloaded_{0};
  std::atomic<int> fetched_{0};
};

}  // namespace

common::Result<PullResult> PullFrom(store::ContentStore& content, store::MetadataDb& metadata,
                                    ImageSource& src, const std::string& name,
                                    const PullOptions& options) {
  Puller p(content, metadata, src, name, options);
  return common::Wrap(p.Run(), "pull " + src.Describe());
}

common::Result<PullResult> Pull(store::ContentStore& content, store::MetadataDb& metadata,
                                const SourceSpec& source, const PullOptions& options) {
  std::unique_ptr<ImageSource> src;
  if (source.kind == SourceSpec::Kind::kLayout) {
    auto s = OpenLayoutSource(source.layout_dir, source.layout_tag);
    if (!s) return std::unexpected(s.error().Wrap("pull oci:" + source.layout_dir.string()));
    src = std::move(*s);
  } else {
    auto s = OpenRegistrySource(source.ref, options.client);
    if (!s) return std::unexpected(s.error().Wrap("pull " + source.ref.str()));
    src = std::move(*s);
  }
  return PullFrom(content, metadata, *src, source.ref.str(), options);
}

}  // namespace registry
