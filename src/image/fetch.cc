#include "image/fetch.h"

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "archive/archive_source.h"
#include "common/log.h"
#include "common/task_group.h"
#include "image/pull_flights.h"
#include "image/trust_gate.h"
#include "registry/platform_manifest.h"

namespace image {
namespace {

using common::Errc;
using common::MakeError;
using std::chrono::steady_clock;

// How often a cancel by the caller is looked for while blobs download.
constexpr std::chrono::milliseconds kCancelPoll{50};

// Serialises event delivery: callers' callbacks need not be thread-safe.
class Events {
 public:
  Events(const FetchOptions& o, std::string ref) : fn_(o.on_event), ref_(std::move(ref)) {}
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
class IngestSink final : public registry::BlobSink {
 public:
  IngestSink(store::Ingest& ingest, const oci::Descriptor& desc, Events& events,
             const FetchOptions& options, std::atomic<int64_t>& downloaded,
             PullFlights::Publisher& published)
      : ingest_(ingest),
        desc_(desc),
        events_(events),
        options_(options),
        downloaded_(downloaded),
        published_(published) {}

  int64_t offset() const override { return ingest_.offset(); }

  common::Status Write(std::span<const std::byte> data) override {
    if (options_.cancel != nullptr && options_.cancel->load())
      return MakeError(Errc::kCancelled, "pull cancelled");
    TRY(ingest_.Write(data));
    published_.Progress(desc_.digest, ingest_.offset());
    counted_ += static_cast<int64_t>(data.size());
    downloaded_ += static_cast<int64_t>(data.size());
    auto now = steady_clock::now();
    if (now - last_event_ >= options_.progress_interval) {
      last_event_ = now;
      events_.Emit({.kind = PullEvent::Kind::kLayerProgress,
                    .digest = desc_.digest,
                    .current = ingest_.offset(),
                    .total = desc_.size,
                    .state = LayerState::kDownloading});
    }
    return {};
  }

  common::Status Restart() override {
    // Why is the client's to say (registry/client.h): a server that
    // ignored Range, a peer dropped mid-blob, a body longer than the blob.
    LOG(Debug) << "blob download restarts from 0" << common::Kv("digest", desc_.digest.str())
               << common::Kv("discarded", ingest_.offset());
    // Only what this pull downloaded was counted; a partial resumed from an
    // earlier pull never was.
    downloaded_ -= counted_;
    counted_ = 0;
    TRY(ingest_.Restart());
    published_.Progress(desc_.digest, 0);
    return {};
  }

  // The ingest's running hash: a peer's bytes are judged by it, not hashed
  // a second time (registry::BlobSink::held_digest).
  std::optional<common::Digest> held_digest() const override { return ingest_.written_digest(); }

 private:
  store::Ingest& ingest_;
  const oci::Descriptor& desc_;
  Events& events_;
  const FetchOptions& options_;
  std::atomic<int64_t>& downloaded_;
  PullFlights::Publisher& published_;
  int64_t counted_ = 0;  // bytes of this blob added to downloaded_
  steady_clock::time_point last_event_{};
};

oci::Descriptor Describe(const registry::FetchedManifest& m) {
  oci::Descriptor d;
  d.media_type = m.media_type;
  d.digest = m.digest;
  d.size = static_cast<int64_t>(m.body.size());
  return d;
}

class Fetcher {
 public:
  Fetcher(store::ContentStore& content, store::MetadataDb& metadata, registry::ImageSource& src,
          const std::string& name, const FetchOptions& options)
      : content_(content),
        metadata_(metadata),
        src_(src),
        name_(name),
        options_(options),
        events_(options, name),
        published_(options.flights, name) {}

  common::Result<FetchResult> Run() {
    auto r = RunLeased();
    // On success the lease went in the image record's transaction (the
    // record now protects the content); the lease is only for the pull in
    // progress. Should the delete fail, the hold is dropped with lease_:
    // the lease is then abandoned and the next prune frees it.
    if (lease_.held()) {
      if (auto st = metadata_.DeleteLease(lease_); !st)
        LOG(Warn) << "delete lease failed" << common::Kv("lease", lease_.lease())
                  << common::Kv("error", st.error().message);
    }
    if (!r) events_.Emit({.kind = PullEvent::Kind::kError, .message = r.error().message});
    return r;
  }

 private:
  // On a cold pull the time goes to fsyncs (each blob, its directory, each
  // metadata commit) more than to the bytes, so:
  // - metadata writes are few and batched: one transaction leases every
  //   blob of the image before any is written; the blob records wait for
  //   the image record's transaction (a blob file without its record is
  //   valid content; the next pull that uses it writes the record);
  // - blobs are committed without an fsync of blobs/sha256/ each; one
  //   SyncBlobs before the image record makes all their names durable;
  // - the manifests are stored, and the config downloaded, while the
  //   layers download, instead of one after the other before them.
  common::Result<FetchResult> RunLeased() {
    FetchResult out;
    out.name = name_;
    ASSIGN_OR_RETURN(registry::FetchedManifest top, src_.ResolveTop(options_.cancel));
    oci::Platform want = options_.platform.value_or(oci::HostPlatform());
    ASSIGN_OR_RETURN(std::optional<oci::IndexEntry> entry,
                     registry::SelectPlatformEntry(src_, top, want));
    const bool by_index = entry.has_value();
    out.target = Describe(top);

    registry::FetchedManifest platform_manifest;
    const registry::FetchedManifest* mf = &top;
    if (by_index) {
      ASSIGN_OR_RETURN(platform_manifest,
                       registry::FetchPlatformManifest(src_, entry->descriptor, options_.cancel));
      out.manifest = Describe(platform_manifest);
      mf = &platform_manifest;
    } else {
      out.manifest = out.target;
    }
    // The policy decides before anything else about the image is read.
    if (options_.trust) TRY(CheckTrust(*options_.trust, src_, mf->digest, options_.cancel));
    ASSIGN_OR_RETURN(oci::Manifest manifest, oci::ParseManifest(mf->body, mf->media_type));
    if (manifest.layers.size() > static_cast<size_t>(std::max(options_.max_layers, 0)))
      return MakeError(Errc::kResourceExhausted,
                       "manifest has " + std::to_string(manifest.layers.size()) +
                           " layers, over the limit of " + std::to_string(options_.max_layers) +
                           " (--max-layers)");
    if (manifest.config.size > oci::kMaxConfigSize)
      return MakeError(Errc::kInvalidArgument, "config " + manifest.config.digest.str() + " is " +
                                                   std::to_string(manifest.config.size) +
                                                   " bytes, over the 16 MiB limit");
    out.config = manifest.config;
    out.layers = manifest.layers;
    if (options_.space.enabled) {
      std::vector<oci::Descriptor> all = {out.target, out.manifest, manifest.config};
      all.insert(all.end(), manifest.layers.begin(), manifest.layers.end());
      TRY(CheckSpaceFor(all, manifest.layers));
    }
    events_.Emit({.kind = PullEvent::Kind::kResolved,
                  .digest = out.manifest.digest,
                  .layers = out.layers,
                  .config = out.config});

    std::vector<oci::Descriptor> blobs = {manifest.config};
    blobs.insert(blobs.end(), manifest.layers.begin(), manifest.layers.end());
    std::vector<oci::Descriptor> leased = blobs;
    leased.push_back(out.target);
    if (by_index) leased.push_back(out.manifest);
    // A re-pull whose blobs are all in the store writes none, so it has
    // nothing to lease; until its record exists, what it found is kept
    // from a prune by the store lock its caller holds (store/store_lock.h).
    if (!AllInStore(leased)) TRY(Lease(leased));
    // Expected before the manifests are published: a reader that has a
    // manifest finds each of its blobs in the store or in flight.
    for (const oci::Descriptor& d : blobs)
      if (!content_.Has(d.digest)) published_.Expect(d);
    TRY(FetchAll(blobs, [&]() -> common::Status {
      TRY(StoreSmall(out.target, top.body, /*target=*/true));
      if (by_index) TRY(StoreSmall(out.manifest, platform_manifest.body, /*target=*/false));
      return {};
    }));
    ASSIGN_OR_RETURN(std::string config_body, content_.ReadBlob(manifest.config.digest));
    ASSIGN_OR_RETURN(out.image_config, common::Wrap(oci::ParseImageConfig(config_body),
                                                    "config " + manifest.config.digest.str()));
    if (out.image_config.diff_ids.size() != manifest.layers.size())
      return MakeError(Errc::kInvalidArgument,
                       "image " + src_.Describe() + ": config lists " +
                           std::to_string(out.image_config.diff_ids.size()) +
                           " diff_ids but the manifest has " +
                           std::to_string(manifest.layers.size()) + " layers");
    oci::Platform got =
        out.image_config.platform.architecture.empty() ? want : out.image_config.platform;
    out.platform = oci::NormalizePlatform(got).str();
    out.origin = src_.Origin();
    if (!options_.record)
      return MakeError(Errc::kInternal,
                       "pull " + name_ + ": no image record maker (FetchOptions::record)");
    ASSIGN_OR_RETURN(store::ImageRecord rec, options_.record(out));
    // A pull that wrote no blob, of an image the store already records as
    // it would, has nothing to make durable and nothing to write.
    bool recorded = false;
    if (fetched_.load() == 0 && !stored_.load()) {
      ASSIGN_OR_RETURN(recorded, AlreadyRecorded(rec));
    }
    if (!recorded) {
      // One directory fsync for every blob committed, before the record
      // refers to them (also those another process committed for us).
      TRY(content_.SyncBlobs());
      ASSIGN_OR_RETURN(store::Txn txn, metadata_.Begin());
      for (const oci::Descriptor& d : blobs_) TRY(txn.PutBlob(d.digest, d.size, d.media_type));
      TRY(txn.PutImage(rec));
      // NotFound: the lease expired and was collected; the record is what
      // protects the content now.
      if (lease_.held()) {
        if (auto st = txn.DeleteLease(lease_.lease()); !st && st.error().code != Errc::kNotFound)
          return std::unexpected(st.error());
      }
      TRY(txn.Commit());
      if (lease_.held()) lease_.Release();
    }
    out.bytes_downloaded = downloaded_.load();
    out.blobs_fetched = fetched_.load();
    out.bytes_present = present_.load();
    events_.Emit({.kind = PullEvent::Kind::kDone,
                  .digest = out.target.digest,
                  .current = out.bytes_downloaded});
    return out;
  }

  // Refuses the pull before any download when the store cannot hold
  // `blobs` and the unpacked `layers` (image/space.h).
  common::Status CheckSpaceFor(const std::vector<oci::Descriptor>& blobs,
                               const std::vector<oci::Descriptor>& layers) {
    std::map<common::Digest, int64_t> held;
    for (const oci::Descriptor& d : blobs) {
      if (content_.Has(d.digest)) {
        held[d.digest] = d.size;
        continue;
      }
      // A partial download is resumed, so its bytes are already paid for;
      // read without its lock, the size is an estimate, as is all of this.
      std::error_code ec;
      auto partial = std::filesystem::file_size(content_.IngestPath(d.digest), ec);
      if (!ec) held[d.digest] = static_cast<int64_t>(partial);
    }
    std::vector<oci::Descriptor> unpack;
    if (!options_.space.unpack_dir.empty()) {
      for (const oci::Descriptor& l : layers)
        if (!options_.space.unpacked_layers.contains(l.digest)) unpack.push_back(l);
    }
    SpaceNeed need = ComputeSpaceNeed(blobs, unpack, held);
    LOG(Debug) << "space needed" << common::Kv("download", need.download)
               << common::Kv("unpack", need.unpack)
               << common::Kv("unknown_unpack_layers", need.unknown_unpack);
    return CheckSpace(need, content_.root() / "content", options_.space.unpack_dir,
                      options_.space.margin);
  }

  bool AllInStore(const std::vector<oci::Descriptor>& descs) const {
    return std::all_of(descs.begin(), descs.end(),
                       [&](const oci::Descriptor& d) { return content_.Has(d.digest); });
  }

  // Whether the record transaction would change nothing: the store holds
  // `rec` (its times aside) and a row of the same size for every blob.
  common::Result<bool> AlreadyRecorded(const store::ImageRecord& rec) {
    auto now = metadata_.GetImage(rec.name);
    if (!now && now.error().code == Errc::kNotFound) return false;
    if (!now) return std::unexpected(std::move(now.error()));
    if (now->target != rec.target || now->labels != rec.labels) return false;
    std::lock_guard lk(blobs_mu_);
    for (const oci::Descriptor& d : blobs_) {
      auto b = metadata_.GetBlob(d.digest);
      if (!b && b.error().code == Errc::kNotFound) return false;
      if (!b) return std::unexpected(std::move(b.error()));
      if (b->size != d.size) return false;  // the transaction reports it
    }
    return true;
  }

  // Adds `descs` to the pull's lease, created by the first call, in one
  // transaction, unsynced: the lease keeps a concurrent prune off what
  // this process writes, and other processes see it once committed; after
  // a machine crash its holder is gone, so losing it loses nothing (a hold
  // file without its row is removed by the next prune). The record's
  // synced commit, later, syncs it first anyway.
  common::Status Lease(const std::vector<oci::Descriptor>& descs) {
    ASSIGN_OR_RETURN(store::Txn txn, metadata_.BeginUnsynced());
    store::LeaseHold created;
    if (!lease_.held()) {
      ASSIGN_OR_RETURN(created, txn.CreateLease(std::chrono::hours(24)));
    }
    const std::string& id = lease_.held() ? lease_.lease() : created.lease();
    for (const auto& d : descs) TRY(txn.AddLeaseResource(id, store::kLeaseContent, d.digest.str()));
    TRY(txn.Commit());
    if (created.held()) lease_ = std::move(created);
    return {};
  }

  // Notes a blob for the image record's transaction.
  void Record(const oci::Descriptor& d) {
    std::lock_guard lk(blobs_mu_);
    blobs_.push_back(d);
  }

  // Manifests and indexes arrive whole; they go into the store like any
  // blob, through an ingest, so the same rules hold.
  common::Status StoreSmall(const oci::Descriptor& d, const std::string& body, bool target) {
    Record(d);
    auto stored = [&] {
      published_.ManifestStored(d, target);
      return common::Status{};
    };
    if (content_.Has(d.digest)) return stored();
    auto ing = content_.BeginIngest(d.digest, d.size, options_.cancel);
    if (!ing) {
      if (ing.error().code == Errc::kAlreadyExists) return stored();
      return std::unexpected(ing.error());
    }
    stored_ = true;
    auto st = [&]() -> common::Status {
      TRY(ing->Restart());
      TRY(ing->Write(std::as_bytes(std::span(body.data(), body.size()))));
      return ing->Commit(store::Ingest::DirSync::kDeferred);
    }();
    if (!st && common::IsNoSpace(st.error())) ing->Abandon();
    if (!st) return st;
    return stored();
  }

  // Downloads `descs` on up to max_concurrent_downloads threads, each blob
  // once, largest first; `meanwhile` (may be empty) runs on this thread
  // while they do, and its error stops them like theirs.
  common::Status FetchAll(const std::vector<oci::Descriptor>& descs,
                          const std::function<common::Status()>& meanwhile = {}) {
    std::deque<const oci::Descriptor*> queue;
    std::set<common::Digest> seen;
    for (const auto& d : descs) {
      if (!seen.insert(d.digest).second) continue;
      // In the store already: reported here, with no thread to start (a
      // re-pull then starts none).
      if (content_.Has(d.digest)) {
        TRY(FetchOne(d));
        continue;
      }
      queue.push_back(&d);
    }
    // Largest first: the biggest layer is what the pull waits for last, so
    // it must not queue behind small blobs (or the config's fsync).
    std::stable_sort(
        queue.begin(), queue.end(),
        [](const oci::Descriptor* a, const oci::Descriptor* b) { return a->size > b->size; });
    // Transfers and ingest-lock waits poll stop_ only. The caller's cancel
    // flag is forwarded to it from this thread: a stalled transfer delivers
    // no bytes through which IngestSink could notice it, and a backoff or a
    // wait for another writer's lock would otherwise run its full course.
    common::JobOptions jobs{
        .threads = std::clamp(options_.max_concurrent_downloads, 1, 64),
        .stop = &stop_,
        .meanwhile = meanwhile,
        .cancelled = [this] { return options_.cancel != nullptr && options_.cancel->load(); },
        .poll = kCancelPoll};
    return common::RunJobs(queue.size(), jobs, [&](size_t i) { return FetchOne(*queue[i]); });
  }

  common::Status FetchOne(const oci::Descriptor& d) {
    events_.Emit({.kind = PullEvent::Kind::kLayerStart,
                  .digest = d.digest,
                  .total = d.size,
                  .state = LayerState::kWaiting});
    auto exists = [&] {
      events_.Emit({.kind = PullEvent::Kind::kLayerDone,
                    .digest = d.digest,
                    .current = d.size,
                    .total = d.size,
                    .state = LayerState::kExists});
      present_ += d.size;
      Record(d);
      // Followers that were waiting for it read the committed file.
      if (options_.flights != nullptr) {
        common::UniqueFd readable(
            ::open(content_.BlobPath(d.digest).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
        if (readable) published_.Writing(d.digest, std::move(readable), d.size);
      }
      published_.Done(d.digest, {});
      return common::Status{};
    };
    if (content_.Has(d.digest)) return exists();
    auto ing = content_.BeginIngest(d.digest, d.size, &stop_);
    if (!ing) {
      if (ing.error().code == Errc::kAlreadyExists) return exists();
      common::Status failed = std::unexpected(ing.error().Wrap("fetch blob " + d.digest.str()));
      published_.Done(d.digest, failed);
      return failed;
    }
    if (options_.flights != nullptr) {
      // Followers read the partial through their own descriptor of it,
      // which stays valid across the commit's rename.
      common::UniqueFd readable(
          ::open(content_.IngestPath(d.digest).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
      if (readable) published_.Writing(d.digest, std::move(readable), ing->offset());
    }
    events_.Emit({.kind = PullEvent::Kind::kLayerProgress,
                  .digest = d.digest,
                  .current = ing->offset(),
                  .total = d.size,
                  .state = ing->offset() > 0 ? LayerState::kResumed : LayerState::kDownloading});
    IngestSink sink(*ing, d, events_, options_, downloaded_, published_);
    // A full disk: this partial and those of the other downloads of this
    // pull (stopped through stop_, after disk_full_ is set) are deleted,
    // so that failing leaves the space as it was, not full.
    auto fail = [&](const common::Error& e, const std::string& what) -> common::Status {
      if (common::IsNoSpace(e)) disk_full_ = true;
      if (disk_full_) ing->Abandon();
      common::Status failed = std::unexpected(e.Wrap(what));
      published_.Done(d.digest, failed);
      return failed;
    };
    auto st = src_.FetchBlob(d.digest, d.size, sink, &stop_);
    if (!st) return fail(st.error(), "fetch blob " + d.digest.str());
    if (auto c = ing->Commit(store::Ingest::DirSync::kDeferred); !c)
      return fail(c.error(),
                  "fetch blob " + d.digest.str() + " from " + src_.DescribeBlob(d.digest));
    ++fetched_;
    Record(d);
    published_.Done(d.digest, {});
    events_.Emit({.kind = PullEvent::Kind::kLayerDone,
                  .digest = d.digest,
                  .current = d.size,
                  .total = d.size,
                  .state = LayerState::kDone});
    return {};
  }

  store::ContentStore& content_;
  store::MetadataDb& metadata_;
  registry::ImageSource& src_;
  const std::string& name_;
  const FetchOptions& options_;
  Events events_;
  store::LeaseHold lease_;  // not held until Lease() created it, nor once deleted
  std::mutex blobs_mu_;
  std::vector<oci::Descriptor> blobs_;  // for their blob records
  std::atomic<bool> stop_{false};
  std::atomic<bool> disk_full_{false};  // set before stop_ when a write found no space
  std::atomic<int64_t> downloaded_{0};
  std::atomic<int> fetched_{0};
  std::atomic<int64_t> present_{0};  // bytes of the blobs found in the store
  std::atomic<bool> stored_{false};  // StoreSmall began to write a manifest
  // Last: withdrawn (its blobs failed unless done) once the pull has ended.
  PullFlights::Publisher published_;
};

}  // namespace

std::optional<LayerState> LayerStateNamed(std::string_view name) {
  for (LayerState s :
       {LayerState::kNone, LayerState::kWaiting, LayerState::kDownloading, LayerState::kExists,
        LayerState::kResumed, LayerState::kDone, LayerState::kUnpacking, LayerState::kUnpacked})
    if (LayerStateName(s) == name) return s;
  return std::nullopt;
}

common::Result<FetchResult> FetchFrom(store::ContentStore& content, store::MetadataDb& metadata,
                                      registry::ImageSource& src, const std::string& name,
                                      const FetchOptions& options) {
  Fetcher p(content, metadata, src, name, options);
  return common::Wrap(p.Run(), "pull " + src.Describe());
}

common::Result<std::unique_ptr<registry::ImageSource>> OpenSource(
    const registry::SourceSpec& source, const registry::ClientOptions& client) {
  std::unique_ptr<registry::ImageSource> src;
  if (source.kind == registry::SourceSpec::Kind::kDockerArchive ||
      source.kind == registry::SourceSpec::Kind::kOciArchive) {
    auto s = archives::OpenArchiveSource(source);
    if (!s) return std::unexpected(s.error().Wrap("pull " + source.ref.str()));
    src = std::move(*s);
  } else if (source.kind == registry::SourceSpec::Kind::kLayout) {
    auto s = registry::OpenLayoutSource(source.layout_dir, source.layout_tag);
    if (!s) return std::unexpected(s.error().Wrap("pull oci:" + source.layout_dir.string()));
    src = std::move(*s);
  } else {
    auto s = registry::OpenRegistrySource(source.ref, client);
    if (!s) return std::unexpected(s.error().Wrap("pull " + source.ref.str()));
    src = std::move(*s);
  }
  return src;
}

common::Result<FetchResult> Fetch(store::ContentStore& content, store::MetadataDb& metadata,
                                  const registry::SourceSpec& source, const FetchOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<registry::ImageSource> src, OpenSource(source, options.client));
  return FetchFrom(content, metadata, *src, source.ref.str(), options);
}

}  // namespace image
