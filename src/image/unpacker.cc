#include "image/unpacker.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <random>

#include "common/fd.h"
#include "common/log.h"
#include "common/task_group.h"
#include "image/conventions.h"
#include "image/image_record.h"
#include "store/lease_hold.h"

namespace image {
namespace {

using common::Errc;
using common::MakeError;

std::string RandomHex(size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string s(n, '0');
  for (auto& c : s) c = kHex[rd() % 16];
  return s;
}

// Counts the bytes the applier reads from the blob and reports every
// `step` of them (never the last read: the "unpacked" event ends the layer).
class ProgressSource final : public unpack::ByteSource {
 public:
  ProgressSource(unpack::ByteSource& in, int64_t total, std::function<void(int64_t)> report)
      : in_(in), total_(total), step_(UnpackProgressStep(total)), report_(std::move(report)) {}

  common::Result<size_t> Read(std::span<std::byte> buf) override {
    auto n = in_.Read(buf);
    if (n && *n > 0) {
      read_ += static_cast<int64_t>(*n);
      if (read_ - reported_ >= step_ && read_ < total_) {
        reported_ = read_;
        report_(read_);
      }
    }
    return n;
  }

 private:
  unpack::ByteSource& in_;
  const int64_t total_;
  const int64_t step_;
  std::function<void(int64_t)> report_;
  int64_t read_ = 0;
  int64_t reported_ = 0;
};

// Reads a blob as a pull of this process downloads it.
class FollowedBlobSource final : public unpack::ByteSource {
 public:
  explicit FollowedBlobSource(PullFlights::Follower follower) : follower_(std::move(follower)) {}
  common::Result<size_t> Read(std::span<std::byte> buf) override { return follower_.Read(buf); }

 private:
  PullFlights::Follower follower_;
};

// The key of a new extract snapshot for the layer of `chain_id`.
std::string ExtractKey(const common::Digest& chain_id) {
  return std::string(kExtractKeyPrefix) + RandomHex(8) + "-" + std::string(chain_id.short_hex());
}

struct Job {
  size_t index = 0;
  oci::Descriptor layer;
  common::Digest diff_id;
  common::Digest chain_id;
  std::string key;      // the extract snapshot
  bool leased = false;  // `key` is already a resource of the unpack's lease
  bool prepared = false;
  int64_t bytes = 0;
  int64_t reported = -1;  // the last "unpacking" count reported
};

class Unpacker {
 public:
  Unpacker(store::ContentStore& content, const UnpackOptions& o) : content_(content), o_(o) {}

  common::Result<UnpackResult> Run(const store::ImageRecord& record) {
    ASSIGN_OR_RETURN(Image img, FromRecord(record));
    ASSIGN_OR_RETURN(ImageParts parts, LoadImage(content_, img));
    ASSIGN_OR_RETURN(UnpackResult out, RunLayers(parts));
    std::optional<common::Digest> top;
    if (!parts.chain_ids.empty()) top = parts.chain_ids.back();
    if (!img.unpacked || img.top_chain != top) TRY(LabelChain(record, top));
    return out;
  }

  // Labels the record as it is now, in one transaction. An rmi, or a pull
  // that moved the name to another image, since `record` was read wins:
  // writing back that old copy would bring a removed name back, or point
  // the name at the old image again.
  common::Status LabelChain(const store::ImageRecord& record,
                            const std::optional<common::Digest>& top) {
    ASSIGN_OR_RETURN(store::Txn txn, o_.metadata->Begin());
    auto now = txn.GetImage(record.name);
    if (!now) {
      if (now.error().code == Errc::kNotFound) return {};
      return std::unexpected(std::move(now.error()));
    }
    if (now->target != record.target) return {};
    SetTopChain(*now, top);
    TRY(txn.PutImage(*now));
    return txn.Commit();
  }

  common::Result<UnpackResult> RunLayers(const ImageParts& parts) {
    UnpackResult out;
    out.chain_ids = parts.chain_ids;
    // Committed chains form a prefix: a snapshot cannot lose its parent
    // while it exists. Find where the missing part starts.
    size_t first_missing = parts.chain_ids.size();
    for (size_t i = 0; i < parts.chain_ids.size(); ++i) {
      auto st = o_.snapshotter->Stat(parts.chain_ids[i].str());
      if (!st || st->kind != snapshot::SnapshotKind::kCommitted) {
        first_missing = i;
        break;
      }
    }
    std::vector<Job> jobs;
    for (size_t i = first_missing; i < parts.chain_ids.size(); ++i) {
      Job j;
      j.index = i;
      j.layer = parts.manifest.layers[i];
      j.diff_id = parts.config.diff_ids[i];
      j.chain_id = parts.chain_ids[i];
      j.key = ExtractKey(j.chain_id);
      jobs.push_back(std::move(j));
    }
    if (!jobs.empty()) {
      // Held for the process's lifetime: if it is killed, prune sees the
      // lease abandoned and collects the extract snapshots at once.
      TRY(LeaseJobs(jobs));
      auto st = o_.snapshotter->independent_layers() ? RunParallel(jobs, parts.chain_ids)
                                                     : RunSequential(jobs, parts.chain_ids);
      Cleanup(jobs);
      if (auto d = o_.metadata->DeleteLease(lease_); !d)
        LOG(Warn) << "delete lease failed" << common::Kv("error", d.error().message);
      if (!st) return std::unexpected(st.error());
      for (const auto& j : jobs) out.bytes_unpacked += j.bytes;
      out.layers_applied = static_cast<int>(jobs.size());
    }
    return out;
  }

 private:
  // Creates the unpack's lease holding every job's extract snapshot key, in
  // one transaction, unsynced (as a pull's lease, image/fetch.cc: what it
  // protects is of no use once a machine crash has ended this process). A
  // key leased before its snapshot exists protects nothing yet, which is
  // harmless; a layer applied again gets a new key, leased then.
  common::Status LeaseJobs(std::vector<Job>& jobs) {
    ASSIGN_OR_RETURN(store::Txn txn, o_.metadata->BeginUnsynced());
    ASSIGN_OR_RETURN(store::LeaseHold hold, txn.CreateLease(std::chrono::hours(24)));
    for (const Job& j : jobs) {
      TRY(txn.AddLeaseResource(hold.lease(), store::kLeaseSnapshot, j.key));
    }
    TRY(txn.Commit());
    lease_ = std::move(hold);
    for (Job& j : jobs) j.leased = true;
    return {};
  }

  // Prepares the extract snapshot of `j` (on `parent`, "" for none) and
  // applies the layer blob into it: from the source's file (open_local),
  // as it downloads (flights), or from the store.
  common::Status Apply(Job& j, const std::string& parent, unpack::WhiteoutMode mode) {
    std::string what = "unpack layer " + j.layer.digest.str();
    std::optional<registry::LocalBlob> local;
    if (o_.open_local) local = o_.open_local(j.layer.digest);
    std::optional<PullFlights::Follower> follower;
    if (!local && o_.flights != nullptr) follower = o_.flights->Follow(j.layer.digest);
    bool early = local || follower;  // applied before the blob is in the store
    if (o_.wait_for_blob && !early) TRY(WaitForBlob(j, what));
    std::unique_ptr<unpack::ByteSource> raw;
    common::UniqueFd blob;
    if (local) {
      raw = std::make_unique<unpack::FileRangeSource>(local->fd.get(), local->offset, local->size);
    } else if (follower) {
      raw = std::make_unique<FollowedBlobSource>(std::move(*follower));
    } else {
      ASSIGN_OR_RETURN(blob, OpenLayer(j, what));
      raw = std::make_unique<unpack::FdSource>(blob.get());
    }
    // The compressed bytes are hashed once, by the store: a blob read from
    // it was verified before it got its name, and an early layer's
    // snapshot waits for wait_for_blob, i.e. for the store's ingest to
    // have verified the same blob. The applier hashes them itself only
    // for an early layer nobody else verifies (no wait_for_blob). The
    // diffID is checked either way.
    const bool hash_blob = early && !o_.wait_for_blob;
    auto r = ApplyFrom(j, parent, mode, *raw, hash_blob);
    if (!r && follower && !common::IsNoSpace(r.error()) && r.error().code != Errc::kCancelled) {
      // What was followed may not be the blob the store verified: a
      // download that restarted from 0 over a partial whose bytes differed
      // (the applier hashed the old ones), or a follower that gave up on
      // another process's download. Once the store has the blob, it is
      // the one to apply; a download that failed leaves r's error.
      auto again = ReapplyFromStore(j, parent, mode, what);
      if (again) {
        r = std::move(*again);
        early = false;
      }
    }
    if (!r) return std::unexpected(r.error());
    // Applied before the blob was in the store: the snapshot waits for the
    // store's verified copy.
    if (early && o_.wait_for_blob) TRY(WaitForBlob(j, what));
    j.bytes = *r;
    Report(j, j.layer.size, LayerState::kUnpacked);
    return {};
  }

  common::Status WaitForBlob(const Job& j, const std::string& what) {
    if (auto w = o_.wait_for_blob(j.layer.digest); !w)
      return std::unexpected(std::move(w.error()).Wrap(what));
    return {};
  }

  common::Result<common::UniqueFd> OpenLayer(const Job& j, const std::string& what) {
    auto opened = content_.OpenBlob(j.layer.digest);
    if (!opened) return std::unexpected(opened.error().Wrap(what + " (pull the image first)"));
    return std::move(*opened);
  }

  // After an apply that followed the download failed: once the blob is in
  // the store, discards the extract snapshot and applies the blob from the
  // store into a new one. nullopt when the blob did not make it.
  std::optional<common::Result<int64_t>> ReapplyFromStore(Job& j, const std::string& parent,
                                                          unpack::WhiteoutMode mode,
                                                          const std::string& what) {
    if (o_.wait_for_blob && !o_.wait_for_blob(j.layer.digest)) return std::nullopt;
    auto blob = OpenLayer(j, what);
    if (!blob) return std::nullopt;
    LOG(Debug) << "applying the layer again from the store"
               << common::Kv("digest", j.layer.digest.str());
    Discard(j);
    j.key = ExtractKey(j.chain_id);
    j.leased = false;
    unpack::FdSource src(blob->get());
    return ApplyFrom(j, parent, mode, src, /*hash_blob=*/false);
  }

  // Prepares `j`'s extract snapshot and applies `raw` into it; returns the
  // uncompressed bytes applied. `hash_blob`: whether the applier checks
  // the blob's digest itself (unpack::ApplyOptions::hash_blob).
  common::Result<int64_t> ApplyFrom(Job& j, const std::string& parent, unpack::WhiteoutMode mode,
                                    unpack::ByteSource& raw, bool hash_blob) {
    std::string what = "unpack layer " + j.layer.digest.str();
    if (!j.leased) {
      TRY(o_.metadata->AddLeaseResource(lease_.lease(), store::kLeaseSnapshot, j.key));
    }
    j.leased = true;
    auto prep = o_.snapshotter->Prepare(j.key, parent, {{std::string(kSnapshotLabelExtract), "1"}});
    if (!prep) return std::unexpected(prep.error().Wrap(what));
    j.prepared = true;
    ASSIGN_OR_RETURN(std::filesystem::path dir, o_.snapshotter->WritableDir(j.key));
    auto dirfd = common::Open(dir.string(), O_RDONLY | O_DIRECTORY);
    if (!dirfd) return std::unexpected(dirfd.error().Wrap(what));
    ProgressSource src(raw, j.layer.size, [&](int64_t n) { Report(j, n, LayerState::kUnpacking); });
    unpack::ApplyOptions ao;
    ASSIGN_OR_RETURN(ao.compression, oci::LayerCompressionOf(j.layer.media_type));
    ao.whiteouts = mode;
    ao.limits = o_.limits;
    ao.expected_diff_id = j.diff_id;
    ao.expected_blob_digest = j.layer.digest;
    ao.hash_blob = hash_blob;
    ao.cancel = &stop_;
    Report(j, 0, LayerState::kUnpacking);
    // ApplyLayer's errors already name the layer ("apply layer sha256:…").
    auto r = unpack::ApplyLayer(src, dirfd->get(), ao);
    // A full disk: say which file system ("entry `x`: write: No space left
    // on device" alone does not).
    if (!r && common::IsNoSpace(r.error()))
      return std::unexpected(r.error().Wrap("unpack into `" + dir.string() + "`"));
    if (!r) return std::unexpected(r.error());
    return r->uncompressed_size;
  }

  // Reports `j`'s unpack. For one layer "unpacking" counts only grow, also
  // across an apply that starts again.
  void Report(Job& j, int64_t current, LayerState state) {
    if (!o_.on_event) return;
    std::lock_guard lk(progress_mu_);
    if (state == LayerState::kUnpacking && current <= j.reported) return;
    j.reported = current;
    o_.on_event({.kind = PullEvent::Kind::kLayerUnpack,
                 .digest = j.layer.digest,
                 .current = current,
                 .total = j.layer.size,
                 .state = state});
  }

  common::Status CommitJob(Job& j, const std::optional<std::string>& new_parent) {
    std::map<std::string, std::string> labels = {
        {std::string(kSnapshotLabelLayer), j.layer.digest.str()},
        {std::string(kSnapshotLabelDiffId), j.diff_id.str()}};
    auto st = o_.snapshotter->Commit(j.chain_id.str(), j.key, labels, new_parent);
    if (!st && st.error().code == Errc::kAlreadyExists) {
      // Another unpack committed the same chain first; ours is a duplicate.
      LOG(Debug) << "chain committed concurrently" << common::Kv("chain", j.chain_id.str());
      return {};
    }
    if (!st) return std::unexpected(st.error().Wrap("commit layer " + j.layer.digest.str()));
    j.prepared = false;
    return {};
  }

  common::Status RunParallel(std::vector<Job>& jobs, const std::vector<common::Digest>& chains) {
    TRY(common::RunJobs(jobs.size(),
                        {.threads = std::clamp<int>(o_.max_parallel, 1, 16), .stop = &stop_},
                        [&](size_t i) -> common::Status {
                          if (o_.cancel != nullptr && o_.cancel->load()) stop_ = true;
                          return Apply(jobs[i], "", unpack::WhiteoutMode::kOverlay);
                        }));
    // No sync before the commits: the snapshotter records them as unsynced
    // and settles them later (snapshot/snapshotter.h, durability).
    for (auto& j : jobs) {
      std::string parent = j.index == 0 ? "" : chains[j.index - 1].str();
      TRY(CommitJob(j, parent));
    }
    return {};
  }

  common::Status RunSequential(std::vector<Job>& jobs, const std::vector<common::Digest>& chains) {
    for (auto& j : jobs) {
      if (o_.cancel != nullptr && o_.cancel->load())
        return MakeError(Errc::kCancelled, "unpack cancelled");
      std::string parent = j.index == 0 ? "" : chains[j.index - 1].str();
      TRY(Apply(j, parent, unpack::WhiteoutMode::kNative));
      TRY(CommitJob(j, std::nullopt));
    }
    return {};
  }

  // Removes extract snapshots that were not committed (failure, or a chain
  // another process committed first).
  void Cleanup(std::vector<Job>& jobs) {
    for (auto& j : jobs)
      if (j.prepared) EmptyExtract(j.key);
    for (auto& j : jobs) Discard(j);
  }

  // Removes `j`'s extract snapshot, when it was prepared and not committed.
  void Discard(Job& j) {
    if (!j.prepared) return;
    EmptyExtract(j.key);
    if (auto st = o_.snapshotter->Remove(j.key); !st && st.error().code != Errc::kNotFound)
      LOG(Warn) << "remove extract snapshot failed" << common::Kv("key", j.key)
                << common::Kv("error", st.error().message);
    j.prepared = false;
  }

  // Deletes what an extract snapshot holds, before the snapshot itself. On
  // a full disk SQLite cannot delete the snapshot's row (it needs room for
  // its journal) until the layer's files are gone; the snapshotter removes
  // files only after the row. Nothing else uses an extract snapshot, so its
  // files may go first. Failures are left to Remove and Cleanup.
  void EmptyExtract(const std::string& key) {
    auto dir = o_.snapshotter->WritableDir(key);
    if (!dir) return;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(*dir, ec)) {
      std::error_code rm;
      std::filesystem::remove_all(e.path(), rm);  // never follows symlinks
      if (rm)
        LOG(Debug) << "empty extract snapshot" << common::Kv("path", e.path().string())
                   << common::Kv("error", rm.message());
    }
  }

  store::ContentStore& content_;
  const UnpackOptions& o_;
  store::LeaseHold lease_;
  std::atomic<bool> stop_{false};
  std::mutex progress_mu_;  // serialises o_.on_event
};

}  // namespace

int64_t UnpackProgressStep(int64_t total) {
  constexpr int64_t kMinStep = 1 << 20;
  return std::max<int64_t>(kMinStep, (total + 99) / 100);
}

common::Result<ImageParts> LoadImage(const store::ContentStore& content,
                                     const store::ImageRecord& record) {
  auto img = FromRecord(record);
  if (!img) return std::unexpected(img.error().Wrap("load image " + record.name));
  return LoadImage(content, *img);
}

common::Result<ImageParts> LoadImage(const store::ContentStore& content, const Image& image) {
  std::string what = "load image " + image.name;
  const common::Digest manifest_digest = PlatformManifest(image);
  auto body = content.ReadBlob(manifest_digest);
  if (!body) return std::unexpected(body.error().Wrap(what + ": manifest"));
  ImageParts parts;
  auto m = oci::ParseManifest(*body, "");
  if (!m) return std::unexpected(m.error().Wrap(what));
  parts.manifest = std::move(*m);
  auto cbody = content.ReadBlob(parts.manifest.config.digest);
  if (!cbody) return std::unexpected(cbody.error().Wrap(what + ": config"));
  auto c = oci::ParseImageConfig(*cbody);
  if (!c)
    return std::unexpected(c.error().Wrap(what + ": config " + parts.manifest.config.digest.str()));
  parts.config = std::move(*c);
  if (parts.config.diff_ids.size() != parts.manifest.layers.size())
    return MakeError(Errc::kInvalidArgument,
                     what + ": config lists " + std::to_string(parts.config.diff_ids.size()) +
                         " diff_ids for " + std::to_string(parts.manifest.layers.size()) +
                         " layers");
  parts.chain_ids = oci::ChainIds(parts.config.diff_ids);
  return parts;
}

common::Result<UnpackResult> Unpack(store::ContentStore& content, const UnpackOptions& options,
                                    const store::ImageRecord& record) {
  if (options.snapshotter == nullptr || options.metadata == nullptr)
    return MakeError(Errc::kInvalidArgument, "unpack: snapshotter and metadata are required");
  Unpacker u(content, options);
  return common::Wrap(u.Run(record), "unpack " + record.name);
}

common::Result<UnpackResult> UnpackRecorded(store::ContentStore& content,
                                            const UnpackOptions& options, const std::string& name) {
  if (options.metadata == nullptr)
    return MakeError(Errc::kInvalidArgument, "unpack: snapshotter and metadata are required");
  auto record = options.metadata->GetImage(name);
  if (!record && record.error().code == Errc::kNotFound)
    return MakeError(Errc::kAborted, "unpack " + name +
                                         ": the image was removed (rmi, prune --all) right after "
                                         "it was pulled");
  if (!record) return std::unexpected(std::move(record.error()));
  return Unpack(content, options, *record);
}

common::Result<UnpackResult> UnpackLayers(store::ContentStore& content,
                                          const UnpackOptions& options, const ImageParts& parts) {
  if (options.snapshotter == nullptr || options.metadata == nullptr)
    return MakeError(Errc::kInvalidArgument, "unpack: snapshotter and metadata are required");
  if (parts.config.diff_ids.size() != parts.manifest.layers.size() ||
      parts.chain_ids.size() != parts.manifest.layers.size())
    return MakeError(Errc::kInvalidArgument,
                     "unpack: diff_ids, chain ids and layers differ in number");
  Unpacker u(content, options);
  return u.RunLayers(parts);
}

ImageParts PartsOf(const FetchResult& pulled) {
  ImageParts parts;
  parts.manifest.config = pulled.config;
  parts.manifest.layers = pulled.layers;
  parts.config = pulled.image_config;
  parts.chain_ids = oci::ChainIds(parts.config.diff_ids);
  return parts;
}

common::Result<SpaceCheckOptions> UnpackSpaceCheck(snapshot::Snapshotter& sn,
                                                   const std::filesystem::path& root) {
  SpaceCheckOptions out;
  out.unpack_dir = root / "snapshots";
  ASSIGN_OR_RETURN(std::vector<snapshot::Info> all, sn.List());
  for (const snapshot::Info& i : all) {
    if (i.kind != snapshot::SnapshotKind::kCommitted) continue;
    auto it = i.labels.find(std::string(kSnapshotLabelLayer));
    if (it == i.labels.end()) continue;
    if (auto d = common::Digest::Parse(it->second)) out.unpacked_layers.insert(*d);
  }
  return out;
}

}  // namespace image
