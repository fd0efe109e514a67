// gantry bundle REF DIR [flags] [-- CMD...] / gantry bundle rm DIR: an OCI
// runtime bundle (config.json + rootfs/) from an image, on a fresh active
// snapshot of its top chainID (unpacking the image first if needed).
//
// The snapshot is keyed "bundle-<first 16 hex of sha256(absolute DIR)>" and
// labelled io.gantry.bundle=DIR (bundle/bundle.h), so `rm` finds it from
// the directory alone even when the bundle's state file is gone, and
// garbage collection keeps the image's layers while the bundle exists.

#include <cstdio>
#include <iostream>
#include <memory>

#include "bundle/bundle.h"
#include "bundle/image_bundle.h"
#include "bundle/spec.h"
#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/store_open.h"
#include "cli/unpack_step.h"

namespace cli {
namespace {

namespace fs = std::filesystem;
using common::Errc;

struct BundleFlags {
  std::string image;
  std::string dir;
  bundle::BundleOptions options;
  std::string rm_dir;
  std::string userns;  // --userns C:H:S, parsed into options.userns
};

common::Result<fs::path> Resolve(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  if (ec) return common::ErrnoError("resolve `" + dir + "`", ec.value());
  return p;
}

int RunCreate(const GlobalOptions& global, BundleFlags f) {
  if (!f.userns.empty()) {
    auto r = bundle::ParseIdRange(f.userns);
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
  // The store lock is the library's (bundle/image_bundle.h).
  auto b = bundle::CreateImageBundle(
      *s->content, *s->metadata, **sn, rec, *target,
      {.spec = f.options, .on_unpacked = [&](const image::UnpackResult& u) {
         PrintUnpackSummary(stderr, rec.name, **sn, u);
       }});
  if (!b) return ReportError(b.error());

  std::cout << "Bundle " << b->info.dir.string() << " from " << rec.name << " (snapshot "
            << b->snapshot_key << ", " << snapshot::KindName((*sn)->kind()) << ")\n";
  if (!b->info.mounted) {
    std::cout << "The rootfs is not mounted; mount it before running the bundle:\n";
    for (const auto& line : b->info.mount_commands) std::cout << "  " << line << "\n";
  }
  return kExitOk;
}

int RunRemove(const GlobalOptions& global, const std::string& dir) {
  auto target = Resolve(dir);
  if (!target) return ReportError(target.error().Wrap("bundle rm"));
  // The store lock is the library's (bundle/image_bundle.h).
  if (auto st = bundle::RemoveImageBundle(
          *target, global.root,
          global.snapshotter == "native" ? snapshot::Kind::kNative : snapshot::Kind::kOverlay);
      !st)
    return ReportError(st.error());
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
