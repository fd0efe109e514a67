// gantry mount REF DIR / gantry umount DIR: an image's rootfs, read-only, as
// a view snapshot of its top chainID mounted at DIR (unpacking the image
// first if needed, as `ctr images mount` does).
//
// The view is keyed "mount-<first 16 hex of sha256(absolute DIR)>" and
// labelled io.gantry.mount=DIR (bundle/image_mount.h), so umount finds it
// from the directory alone and garbage collection keeps the image's layers
// while it exists.

#include <iostream>

#include "bundle/image_mount.h"
#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/store_open.h"

namespace cli {
namespace {

namespace fs = std::filesystem;
using common::Errc;

// The directory as the kernel will name the mount point.
common::Result<fs::path> Resolve(const std::string& dir, bool must_exist) {
  std::error_code ec;
  fs::path p = must_exist ? fs::canonical(dir, ec) : fs::weakly_canonical(dir, ec);
  if (ec) return common::ErrnoError("resolve `" + dir + "`", ec.value());
  if (must_exist && !fs::is_directory(p))
    return common::MakeError(Errc::kFailedPrecondition, "`" + dir + "` is not a directory");
  return p;
}

int RunMount(const GlobalOptions& global, const std::string& ref, const std::string& dir) {
  auto target = Resolve(dir, true);
  if (!target) return ReportError(target.error().Wrap("mount"));
  auto s = OpenStore(global);
  if (!s) return ReportError(s.error());
  auto sn = OpenSnapshotter(global);
  if (!sn) return ReportError(sn.error());
  auto recs = FindImages(*s->metadata, ref);
  if (!recs) return ReportError(recs.error().Wrap("mount"));
  const store::ImageRecord& rec = recs->front();
  // The store lock is the library's (bundle/image_mount.h).
  auto key = bundle::MountImage(*s->content, *s->metadata, **sn, rec, *target, {.on_unpack = [&] {
    std::cerr << "Unpacking " << rec.name << " (" << snapshot::KindName((*sn)->kind()) << ")\n";
  }});
  if (!key) return ReportError(key.error());
  std::cout << "Mounted " << rec.name << " at " << target->string() << " (read-only, snapshot "
            << *key << ")\n";
  return kExitOk;
}

int RunUmount(const GlobalOptions& global, const std::string& dir) {
  auto target = Resolve(dir, false);
  if (!target) return ReportError(target.error().Wrap("umount"));
  auto sns = OpenAllSnapshotters(global);
  if (!sns) return ReportError(sns.error());
  if (auto st = bundle::UnmountImage(*target, sns->all); !st) return ReportError(st.error());
  std::cout << "Unmounted " << target->string() << "\n";
  return kExitOk;
}

}  // namespace

void RegisterMount(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto ref = std::make_shared<std::string>();
  auto dir = std::make_shared<std::string>();
  auto* m = app.add_subcommand("mount",
                               "Mount an image's rootfs read-only at DIR (unpacks it if needed)");
  m->add_option("image", *ref, "Reference or image id")->required();
  m->add_option("dir", *dir, "Existing directory to mount on")->required();
  m->callback([&global, &exit_code, ref, dir] { exit_code = RunMount(global, *ref, *dir); });

  auto udir = std::make_shared<std::string>();
  auto* u = app.add_subcommand("umount", "Unmount a `gantry mount` and remove its view snapshot");
  u->add_option("dir", *udir, "Directory given to gantry mount")->required();
  u->callback([&global, &exit_code, udir] { exit_code = RunUmount(global, *udir); });
}

}  // namespace cli
