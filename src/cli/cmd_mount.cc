// gantry mount REF DIR / gantry umount DIR: an image's rootfs, read-only, as
// a view snapshot of its top chainID mounted at DIR (unpacking the image
// first if needed, as `ctr images mount` does).
//
// The view is keyed "mount-<first 16 hex of sha256(absolute DIR)>" and
// labelled io.gantry.mount=DIR, so umount finds it from the directory alone
// and garbage collection keeps the image's layers while it exists.

#include <sys/mount.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/image_lookup.h"
#include "cli/store_open.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/log.h"
#include "image/image_record.h"
#include "image/unpacker.h"
#include "snapshot/mount.h"
#include "store/store_lock.h"

namespace cli {
namespace {

namespace fs = std::filesystem;
using common::Errc;

constexpr std::string_view kLabelMount = "io.gantry.mount";
constexpr std::string_view kLabelMountImage = "io.gantry.image";

std::string MountKey(const fs::path& abs) {
  return "mount-" + common::Digest::Sha256Of(abs.string()).hex().substr(0, 16);
}

// The directory as the kernel will name the mount point.
common::Result<fs::path> Resolve(const std::string& dir, bool must_exist) {
  std::error_code ec;
  fs::path p = must_exist ? fs::canonical(dir, ec) : fs::weakly_canonical(dir, ec);
  if (ec) return common::ErrnoError("resolve `" + dir + "`", ec.value());
  if (must_exist && !fs::is_directory(p))
    return common::MakeError(Errc::kFailedPrecondition, "`" + dir + "` is not a directory");
  return p;
}

// The image's top chainID, unpacking it when its snapshot is missing.
common::Result<std::string> TopChain(OpenedStore& s, snapshot::Snapshotter& sn,
                                     const store::ImageRecord& rec) {
  ASSIGN_OR_RETURN(image::Image img, image::FromRecord(rec));
  ASSIGN_OR_RETURN(image::ImageParts parts, image::LoadImage(*s.content, img));
  if (parts.chain_ids.empty()) return std::string();
  std::string top = parts.chain_ids.back().str();
  if (auto st = sn.Stat(top); st && st->kind == snapshot::SnapshotKind::kCommitted) return top;
  std::cerr << "Unpacking " << rec.name << " (" << snapshot::KindName(sn.kind()) << ")\n";
  image::UnpackOptions uo;
  uo.snapshotter = &sn;
  uo.metadata = s.metadata.get();
  ASSIGN_OR_RETURN(image::UnpackResult r, image::Unpack(*s.content, uo, rec));
  return r.chain_ids.back().str();
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
  // Shared, as a pull holds it: prune cannot run between the unpack and the
  // view that then protects the layers.
  auto lock = store::StoreLock::Shared(global.root);
  if (!lock) return ReportError(lock.error().Wrap("mount"));
  auto top = TopChain(*s, **sn, rec);
  if (!top) return ReportError(top.error().Wrap("mount " + rec.name));

  std::string key = MountKey(*target);
  auto mounts = (*sn)->View(key, *top,
                            {{std::string(kLabelMount), target->string()},
                             {std::string(kLabelMountImage), rec.name}});
  if (!mounts) {
    if (mounts.error().code == Errc::kAlreadyExists)
      return ReportError(common::MakeError(Errc::kAlreadyExists,
                                           "mount " + rec.name + ": `" + target->string() +
                                               "` already has a gantry mount (snapshot `" + key +
                                               "`); umount it first")
                             .error());
    return ReportError(mounts.error().Wrap("mount " + rec.name));
  }
  auto guard = snapshot::MountAt(*mounts, *target, {.readonly = true});
  if (!guard) {
    if (auto rm = (*sn)->Remove(key); !rm)
      LOG(Warn) << "remove view failed" << common::Kv("key", key)
                << common::Kv("error", rm.error().message);
    return ReportError(guard.error().Wrap("mount " + rec.name));
  }
  (void)guard->release();  // stays mounted until `gantry umount`
  std::cout << "Mounted " << rec.name << " at " << target->string() << " (read-only, snapshot "
            << key << ")\n";
  return kExitOk;
}

int RunUmount(const GlobalOptions& global, const std::string& dir) {
  auto target = Resolve(dir, false);
  if (!target) return ReportError(target.error().Wrap("umount"));
  std::string key = MountKey(*target);
  auto sns = OpenAllSnapshotters(global);
  if (!sns) return ReportError(sns.error());
  snapshot::Snapshotter* owner = nullptr;
  for (snapshot::Snapshotter* sn : sns->all) {
    auto info = sn->Stat(key);
    if (!info) continue;
    auto it = info->labels.find(std::string(kLabelMount));
    if (it != info->labels.end() && it->second == target->string()) owner = sn;
  }
  if (owner == nullptr)
    return ReportError(common::MakeError(Errc::kNotFound,
                                         "umount: `" + target->string() + "` is not a gantry mount")
                           .error());
  if (::umount2(target->c_str(), UMOUNT_NOFOLLOW) != 0) {
    // EINVAL: not mounted any more (a reboot, a manual umount): the view is
    // still ours to remove.
    if (errno != EINVAL)
      return ReportError(common::ErrnoError("umount `" + target->string() + "`").error());
    LOG(Warn) << "not mounted; removing the view" << common::Kv("dir", target->string());
  }
  if (auto st = owner->Remove(key); !st) return ReportError(st.error().Wrap("umount"));
  std::cout << "Unmounted " << target->string() << "\n";
  return kExitOk;
}

}  // namespace

void RegisterMount(CLI::App& app, GlobalOptions& global, int& exit_code) {
  auto ref = std::make_shared<std::string>();
  auto dir = std::make_shared<std::string>();
  auto* m = app.add_subcommand("mount", "Mount an image's rootfs read-only at DIR (unpacks it if needed)");
  m->add_option("image", *ref, "Reference or image id")->required();
  m->add_option("dir", *dir, "Existing directory to mount on")->required();
  m->callback([&global, &exit_code, ref, dir] { exit_code = RunMount(global, *ref, *dir); });

  auto udir = std::make_shared<std::string>();
  auto* u = app.add_subcommand("umount", "Unmount a `gantry mount` and remove its view snapshot");
  u->add_option("dir", *udir, "Directory given to gantry mount")->required();
  u->callback([&global, &exit_code, udir] { exit_code = RunUmount(global, *udir); });
}

}  // namespace cli
