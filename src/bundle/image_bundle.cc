#include "bundle/image_bundle.h"

#include <memory>
#include <optional>
#include <vector>

#include "bundle/top_chain_internal.h"
#include "common/log.h"
#include "store/store_lock.h"

namespace bundle {
namespace {

namespace fs = std::filesystem;
using common::Errc;

// Removes the bundle's snapshot unless dismissed: the rollback of a bundle
// whose creation failed after Prepare.
class SnapshotRollback {
 public:
  SnapshotRollback(snapshot::Snapshotter& sn, std::string key) : sn_(sn), key_(std::move(key)) {}
  ~SnapshotRollback() {
    if (key_.empty()) return;
    if (auto st = sn_.Remove(key_); !st)
      LOG(Warn) << "rollback: remove snapshot failed" << common::Kv("key", key_)
                << common::Kv("error", st.error().message);
  }
  SnapshotRollback(const SnapshotRollback&) = delete;
  SnapshotRollback& operator=(const SnapshotRollback&) = delete;
  void Dismiss() { key_.clear(); }

 private:
  snapshot::Snapshotter& sn_;
  std::string key_;
};

ImageRuntimeConfig RuntimeConfig(const oci::ImageConfig& c) {
  return {.entrypoint = c.entrypoint,
          .cmd = c.cmd,
          .env = c.env,
          .working_dir = c.working_dir,
          .user = c.user,
          .stop_signal = c.stop_signal,
          .labels = c.labels};
}

}  // namespace

common::Result<ImageBundle> CreateImageBundle(store::ContentStore& content,
                                              store::MetadataDb& metadata,
                                              snapshot::Snapshotter& sn,
                                              const store::ImageRecord& record, const fs::path& dir,
                                              const ImageBundleOptions& options) {
  const std::string what = "bundle " + record.name;
  ASSIGN_OR_RETURN(store::StoreLock lock,
                   common::Wrap(store::StoreLock::Shared(content.root(), options.cancel), what));
  ASSIGN_OR_RETURN(internal::TopChain top,
                   common::Wrap(internal::UnpackedTopChain(
                                    content, metadata, sn, record,
                                    {.cancel = options.cancel, .on_unpacked = options.on_unpacked}),
                                what));

  const std::string key = BundleSnapshotKey(dir);
  auto mounts = sn.Prepare(key, top.top,
                           {{std::string(kSnapshotLabelBundle), dir.string()},
                            {std::string(kSnapshotLabelImage), record.name}});
  if (!mounts) {
    if (mounts.error().code == Errc::kAlreadyExists)
      return common::MakeError(Errc::kAlreadyExists,
                               what + ": `" + dir.string() +
                                   "` already has a gantry bundle (snapshot `" + key +
                                   "`); remove it with `gantry bundle rm " + dir.string() + "`");
    return std::unexpected(mounts.error().Wrap(what));
  }
  SnapshotRollback rollback(sn, key);

  std::error_code ec;
  const fs::path store_root = fs::absolute(content.root(), ec);
  ASSIGN_OR_RETURN(PendingBundle pending,
                   common::Wrap(PendingBundle::Begin(dir, *mounts,
                                                     {.no_mount = options.spec.no_mount,
                                                      .store_root = store_root,
                                                      .snapshotter = sn.kind(),
                                                      .snapshot_key = key,
                                                      .image = record.name}),
                                what));
  if (options.spec.userns)
    TRY(common::Wrap(ShiftOwnership(pending.rootfs_view(), *options.spec.userns), what));
  ASSIGN_OR_RETURN(nlohmann::json spec, common::Wrap(MakeSpec(RuntimeConfig(top.parts.config),
                                                              options.spec, pending.rootfs_view()),
                                                     what));
  ASSIGN_OR_RETURN(BundleInfo info, common::Wrap(pending.Commit(std::move(spec)), what));
  rollback.Dismiss();
  return ImageBundle{.info = std::move(info), .snapshot_key = key};
}

common::Status RemoveImageBundle(const fs::path& dir, const fs::path& root,
                                 snapshot::Kind preferred) {
  const std::string what = "bundle rm";
  ASSIGN_OR_RETURN(std::optional<BundleState> state, common::Wrap(ReadBundleState(dir), what));

  std::vector<std::unique_ptr<snapshot::Snapshotter>> opened;
  snapshot::Snapshotter* sn = nullptr;
  std::string key = BundleSnapshotKey(dir);
  fs::path store_root = root;
  if (state) {
    // The store the bundle was made from, whatever `root` says now.
    key = state->snapshot;
    store_root = state->root;
    std::error_code ec;
    if (!fs::is_directory(state->root, ec)) {
      LOG(Warn) << "the bundle's store is gone; removing the bundle files only"
                << common::Kv("root", state->root.string());
    } else {
      snapshot::Kind kind = state->snapshotter == snapshot::KindName(snapshot::Kind::kNative)
                                ? snapshot::Kind::kNative
                                : snapshot::Kind::kOverlay;
      ASSIGN_OR_RETURN(
          std::unique_ptr<snapshot::Snapshotter> one,
          common::Wrap(snapshot::Open(state->root, {.kind = kind, .fallback_to_native = false}),
                       what));
      sn = one.get();
      opened.push_back(std::move(one));
    }
  } else {
    // No state file (removed by hand): the snapshot of `root` keyed and
    // labelled for this directory, in either snapshotter.
    ASSIGN_OR_RETURN(opened, common::Wrap(snapshot::OpenAll(root, preferred), what));
    for (const auto& s : opened)
      if (s->Stat(key)) sn = s.get();
  }
  std::optional<store::StoreLock> lock;
  if (sn != nullptr) {
    ASSIGN_OR_RETURN(store::StoreLock l, common::Wrap(store::StoreLock::Shared(store_root), what));
    lock.emplace(std::move(l));
  }
  return common::Wrap(RemoveBundle(dir, sn, key), what);
}

}  // namespace bundle
