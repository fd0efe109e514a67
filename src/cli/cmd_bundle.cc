// gantry bundle REF DIR [flags] [-- CMD...] / gantry bundle rm DIR: an OCI
// runtime bundle (config.json + rootfs/) from an image, on a fresh active
// snapshot of its top chainID (unpacking the image first if needed).
//
// The snapshot is keyed "bundle-<first 16 hex of sha256(absolute DIR)>" and
// labelled io.gantry.bundle=DIR (ociruntime/bundle.h), so `rm` finds it from
// the directory alone even when the bundle's state file is gone, and
// garbage collection keeps the image's layers while the bundle exists.

#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/store_open.h"
#include "cli/unpack_step.h"
#include "common/log.h"
#include "image/image_record.h"
#include "image/unpacker.h"
#include "ociruntime/bundle.h"
#include "ociruntime/spec.h"
#include "store/store_lock.h"

namespace cli {
namespace {

namespace fs = std::filesystem;
using common::Errc;

struct BundleFlags {
  std::string image;
  std::string dir;
  ociruntime::BundleOptions options;
  std::string rm_dir;
  std::string userns;  // --userns C:H:S, parsed into options.userns
};

common::Result<fs::path> Resolve(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  if (ec) return common::ErrnoError("resolve `" + dir + "`", ec.value());
  return p;
}

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

ociruntime::ImageRuntimeConfig RuntimeConfig(const oci::ImageConfig& c) {
  return {.entrypoint = c.entrypoint,
          .cmd = c.cmd,
          .env = c.env,
          .working_dir = c.working_dir,
          .user = c.user,
          .stop_signal = c.stop_signal,
          .labels = c.labels};
}

int RunCreate(const GlobalOptions& global, BundleFlags f) {
  if (!f.userns.empty()) {
    auto r = ociruntime::ParseIdRange(f.userns);
    if (!r) return ReportError(r.error().Wrap("bundle"));
    if (f.options.no_mount)
      return ReportError(common::MakeError(Errc::kInvalidArgument,
                                           "bundle: --userns needs the rootfs mounted (not with "
                                           "--no-mount): it is chown'd to the host range")
                             .error());
    f.options.userns = *r;
  }
  auto target = Resolve(f.dir);
  if (!target) return ReportError(target.error().Wrap("bundle"));
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  auto sn = OpenSnapshotter(global);
  if (!sn) return ReportError(sn.error());
  auto recs = FindImages(*s->metadata, f.image);
  if (!recs) return ReportError(recs.error().Wrap("bundle"));
  const store::ImageRecord& rec = recs->front();
  const std::string what = "bundle " + rec.name;
  // Shared, as a pull holds it: prune cannot run between the unpack and the
  // Prepare that then protects the layers.
  auto lock = store::StoreLock::Shared(global.root);
  if (!lock) return ReportError(lock.error().Wrap(what));

  auto img = image::FromRecord(rec);
  if (!img) return ReportError(img.error().Wrap(what));
  auto parts = image::LoadImage(*s->content, *img);
  if (!parts) return ReportError(parts.error().Wrap(what));
  std::string top;
  if (!parts->chain_ids.empty()) {
    top = parts->chain_ids.back().str();
    auto st = (*sn)->Stat(top);
    if (!st || st->kind != snapshot::SnapshotKind::kCommitted) {
      // Under the lock taken above (image::UnpackStoredImage would take
      // its own).
      image::UnpackOptions uo{.snapshotter = sn->get(), .metadata = s->metadata.get()};
      auto u = image::Unpack(*s->content, uo, rec);
      if (!u) return ReportError(u.error().Wrap(what));
      PrintUnpackSummary(stderr, rec.name, **sn, *u);
    }
  }

  const std::string key = ociruntime::BundleSnapshotKey(*target);
  auto mounts = (*sn)->Prepare(key, top,
                               {{std::string(ociruntime::kSnapshotLabelBundle), target->string()},
                                {std::string(ociruntime::kSnapshotLabelImage), rec.name}});
  if (!mounts) {
    if (mounts.error().code == Errc::kAlreadyExists)
      return ReportError(common::MakeError(Errc::kAlreadyExists,
                                           what + ": `" + target->string() +
                                               "` already has a gantry bundle (snapshot `" + key +
                                               "`); remove it with `gantry bundle rm " +
                                               target->string() + "`")
                             .error());
    return ReportError(mounts.error().Wrap(what));
  }
  SnapshotRollback rollback(**sn, key);

  std::error_code ec;
  const fs::path store_root = fs::absolute(global.root, ec);
  auto pending = ociruntime::PendingBundle::Begin(*target, *mounts,
                                                  {.no_mount = f.options.no_mount,
                                                   .store_root = store_root,
                                                   .snapshotter = (*sn)->kind(),
                                                   .snapshot_key = key,
                                                   .image = rec.name});
  if (!pending) return ReportError(pending.error().Wrap(what));
  if (f.options.userns)
    if (auto st = ociruntime::ShiftOwnership(pending->rootfs_view(), *f.options.userns); !st)
      return ReportError(st.error().Wrap(what));
  auto spec = ociruntime::MakeSpec(RuntimeConfig(parts->config), f.options, pending->rootfs_view());
  if (!spec) return ReportError(spec.error().Wrap(what));
  auto info = pending->Commit(std::move(*spec));
  if (!info) return ReportError(info.error().Wrap(what));
  rollback.Dismiss();

  std::cout << "Bundle " << info->dir.string() << " from " << rec.name << " (snapshot " << key
            << ", " << snapshot::KindName((*sn)->kind()) << ")\n";
  if (!info->mounted) {
    std::cout << "The rootfs is not mounted; mount it before running the bundle:\n";
    for (const auto& line : info->mount_commands) std::cout << "  " << line << "\n";
  }
  return kExitOk;
}

int RunRemove(const GlobalOptions& global, const std::string& dir) {
  auto target = Resolve(dir);
  if (!target) return ReportError(target.error().Wrap("bundle rm"));
  const std::string what = "bundle rm";
  auto state = ociruntime::ReadBundleState(*target);
  if (!state) return ReportError(state.error().Wrap(what));

  std::unique_ptr<snapshot::Snapshotter> owned;
  snapshot::Snapshotter* sn = nullptr;
  std::string key = ociruntime::BundleSnapshotKey(*target);
  fs::path root = global.root;
  OpenedSnapshotters all;
  if (*state) {
    // The store the bundle was made from, whatever --root says now.
    const ociruntime::BundleState& st = **state;
    key = st.snapshot;
    root = st.root;
    std::error_code ec;
    if (!fs::is_directory(st.root, ec)) {
      LOG(Warn) << "the bundle's store is gone; removing the bundle files only"
                << common::Kv("root", st.root.string());
    } else {
      snapshot::Kind kind = st.snapshotter == snapshot::KindName(snapshot::Kind::kNative)
                                ? snapshot::Kind::kNative
                                : snapshot::Kind::kOverlay;
      auto opened = snapshot::Open(st.root, {.kind = kind, .fallback_to_native = false});
      if (!opened) return ReportError(opened.error().Wrap(what));
      owned = std::move(*opened);
      sn = owned.get();
    }
  } else {
    // No state file (removed by hand): the snapshot of --root keyed and
    // labelled for this directory, in either snapshotter.
    auto opened = OpenAllSnapshotters(global);
    if (!opened) return ReportError(opened.error().Wrap(what));
    all = std::move(*opened);
    for (snapshot::Snapshotter* s : all.all)
      if (s->Stat(key)) sn = s;
  }
  std::optional<store::StoreLock> lock;
  if (sn != nullptr) {
    auto l = store::StoreLock::Shared(root);
    if (!l) return ReportError(l.error().Wrap(what));
    lock.emplace(std::move(*l));
  }
  if (auto st = ociruntime::RemoveBundle(*target, sn, key); !st)
    return ReportError(st.error().Wrap(what));
  std::cout << "Removed bundle " << target->string() << "\n";
  return kExitOk;
}

}  // namespace

void RegisterBundle(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto f = std::make_shared<BundleFlags>();
  auto* cmd = app.add_subcommand(
      "bundle",
      "Make an OCI runtime bundle (DIR/config.json + DIR/rootfs) from an image, runnable "
      "unchanged with runc or crun");
  cmd->footer(
      "Usage: gantry bundle [OPTIONS] IMAGE DIR [-- CMD...] | gantry bundle rm DIR\n"
      "The rootfs is a new writable overlay snapshot of the image (unpacked first if needed) "
      "mounted at DIR/rootfs; `gantry bundle rm DIR` unmounts it and removes the snapshot.\n"
      "config.json follows `runc spec` (namespaces, mounts, masked and read-only paths, "
      "RLIMIT_NOFILE, noNewPrivileges) with Docker's default capability set; args are the "
      "image's Entrypoint + Cmd, and CMD... replaces Cmd as `docker run` does.\n"
      "--no-mount leaves DIR/rootfs empty: the snapshot's mounts are written to "
      "DIR/rootfs.mounts.json (with the `mount -t overlay overlay -o ... DIR/rootfs` line to run) "
      "and to config.json's annotation io.gantry.rootfs.mounts; mount them before `runc run`.");
  cmd->add_option("image", f->image, "Reference or image id");
  cmd->add_option("dir", f->dir, "Bundle directory (created if missing; may exist empty)");
  cmd->add_option("cmd", f->options.args, "Command and arguments replacing the image's Cmd");
  cmd->add_flag("--readonly", f->options.readonly,
                "Make the container's root filesystem read-only");
  cmd->add_flag("--no-mount", f->options.no_mount,
                "Do not mount the rootfs; write its mounts to DIR/rootfs.mounts.json and the "
                "io.gantry.rootfs.mounts annotation");
  cmd->add_option("--env,-e", f->options.env, "Set an environment variable (NAME=VALUE)")
      ->allow_extra_args(false);
  cmd->add_option("--user,-u", f->options.user,
                  "User: name, uid, name:group, uid:gid (resolved in the image's /etc/passwd)");
  cmd->add_option("--hostname", f->options.hostname, "Container hostname (default gantry)");
  cmd->add_option("--userns", f->userns,
                  "Run in a user namespace mapping CONTAINER:HOST:SIZE (uids and gids); the "
                  "rootfs snapshot is chown'd to the host range (not with --no-mount)");

  auto* rm = cmd->add_subcommand(
      "rm",
      "Unmount a bundle's rootfs, remove its snapshot and files (delete its container first)");
  rm->add_option("dir", f->rm_dir, "Bundle directory")->required();
  rm->callback([&global, &exit_code, f] { exit_code = RunRemove(global, f->rm_dir); });

  cmd->callback([rm, &exit_code, &global, f] {
    if (rm->parsed()) return;
    if (f->image.empty() || f->dir.empty()) {
      std::cerr << "gantry: bundle: IMAGE and DIR are required (see gantry bundle --help)\n";
      exit_code = kExitUsage;
      return;
    }
    exit_code = RunCreate(global, *f);
  });
}

}  // namespace cli
