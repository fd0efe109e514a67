// Bundle directories: layout, creation with rollback, removal.

#include "bundle/bundle.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/digest.h"
#include "common/fs.h"
#include "common/log.h"
#include "snapshot/mount.h"

namespace bundle {
namespace {

namespace fs = std::filesystem;
using common::Errc;
using common::ErrnoError;
using common::MakeError;
using common::Result;
using common::Status;
using nlohmann::json;

constexpr int kStateVersion = 1;
constexpr size_t kMaxStateFile = 1 << 20;

// Whether `path` is the root of a mount (statx's STATX_ATTR_MOUNT_ROOT, or
// a device different from its parent's on kernels without it).
Result<bool> IsMountPoint(const fs::path& path) {
  struct statx stx {};
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) != 0)
    return ErrnoError("stat `" + path.string() + "`");
  if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  struct stat self {
  }, parent{};
  if (::lstat(path.c_str(), &self) != 0 || ::lstat(path.parent_path().c_str(), &parent) != 0)
    return ErrnoError("stat `" + path.string() + "`");
  return self.st_dev != parent.st_dev;
}

// Whether a directory has no entries. NotFound when it does not exist.
Result<bool> IsEmptyDir(const fs::path& path) {
  ASSIGN_OR_RETURN(common::UniqueFd fd,
                   common::Open(path.string(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  ASSIGN_OR_RETURN(common::UniqueDir d, common::UniqueDir::FromFd(std::move(fd)));
  while (dirent* e = ::readdir(d.get())) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") return false;
  }
  return true;
}

bool Exists(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

void RemoveLogged(const fs::path& p, bool dir) {
  if ((dir ? ::rmdir(p.c_str()) : ::unlink(p.c_str())) != 0 && errno != ENOENT)
    LOG(Warn) << "cannot remove" << common::Kv("path", p.string()) << common::Kv("errno", errno);
}

json MountsJson(const std::vector<snapshot::MountSpec>& mounts) {
  json arr = json::array();
  for (const auto& m : mounts)
    arr.push_back({{"type", m.type}, {"source", m.source}, {"options", m.options}});
  return arr;
}

json StateJson(const BundleState& s) {
  return {{"version", kStateVersion},     {"dir", s.dir.string()},       {"root", s.root.string()},
          {"snapshotter", s.snapshotter}, {"snapshot", s.snapshot},      {"image", s.image},
          {"mounted", s.mounted},         {"created_dir", s.created_dir}};
}

}  // namespace

std::string BundleSnapshotKey(const fs::path& abs_dir) {
  return std::string(kBundleKeyPrefix) +
         common::Digest::Sha256Of(abs_dir.string()).hex().substr(0, 16);
}

// ---- PendingBundle -------------------------------------------------------------

struct PendingBundle::Impl {
  fs::path dir, rootfs, view;
  std::vector<snapshot::MountSpec> mounts;
  CreateBundleOptions options;
  BundleState state;
  common::MountGuard mount;  // DIR/rootfs while mounted
  bool created_rootfs = false;
  bool wrote_state = false;
  bool wrote_mounts_file = false;
  bool committed = false;

  ~Impl() {
    if (committed) return;
    if (auto st = mount.Unmount(); !st) LOG(Warn) << "rollback: " << st.error().message;
    if (wrote_mounts_file) RemoveLogged(dir / kBundleMountsFile, false);
    if (wrote_state) RemoveLogged(dir / kBundleStateFile, false);
    if (created_rootfs) RemoveLogged(rootfs, true);
    if (state.created_dir) RemoveLogged(dir, true);
  }
};

PendingBundle::PendingBundle(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PendingBundle::PendingBundle(PendingBundle&&) noexcept = default;
PendingBundle& PendingBundle::operator=(PendingBundle&&) noexcept = default;
PendingBundle::~PendingBundle() = default;

const fs::path& PendingBundle::rootfs_view() const { return impl_->view; }

Result<PendingBundle> PendingBundle::Begin(const fs::path& dir,
                                           const std::vector<snapshot::MountSpec>& mounts,
                                           const CreateBundleOptions& options) {
  const std::string what = "create bundle `" + dir.string() + "`";
  if (!dir.is_absolute())
    return MakeError(Errc::kInvalidArgument, what + ": the directory must be absolute");
  if (mounts.size() != 1)
    return MakeError(Errc::kInvalidArgument,
                     what + ": expected one rootfs mount, got " + std::to_string(mounts.size()));
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->rootfs = dir / kBundleRootfsDir;
  impl->mounts = mounts;
  impl->options = options;
  impl->state = {.dir = dir,
                 .root = options.store_root,
                 .snapshotter = std::string(snapshot::KindName(options.snapshotter)),
                 .snapshot = options.snapshot_key,
                 .image = options.image,
                 .mounted = !options.no_mount,
                 .created_dir = false};

  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoError(what + ": stat");
    TRY(common::Wrap(common::MkdirAll(dir, 0755), what));
    impl->state.created_dir = true;
  } else if (!S_ISDIR(st.st_mode)) {
    return MakeError(Errc::kFailedPrecondition, what + ": not a directory");
  }
  for (std::string_view f : {kBundleConfigFile, kBundleStateFile}) {
    if (Exists(dir / f))
      return MakeError(Errc::kAlreadyExists, what + ": it already holds " + std::string(f) +
                                                 " (remove the bundle first: gantry bundle rm " +
                                                 dir.string() + ")");
  }
  if (::lstat(impl->rootfs.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode))
      return MakeError(Errc::kFailedPrecondition,
                       what + ": `" + impl->rootfs.string() + "` is not a directory");
    ASSIGN_OR_RETURN(bool mp, common::Wrap(IsMountPoint(impl->rootfs), what));
    ASSIGN_OR_RETURN(bool empty, common::Wrap(IsEmptyDir(impl->rootfs), what));
    if (mp || !empty)
      return MakeError(Errc::kFailedPrecondition, what + ": `" + impl->rootfs.string() + "` is " +
                                                      (mp ? "a mount point" : "not empty"));
  } else {
    if (::mkdir(impl->rootfs.c_str(), 0755) != 0)
      return ErrnoError(what + ": mkdir `" + impl->rootfs.string() + "`");
    impl->created_rootfs = true;
  }

  // Recorded before anything is mounted: a bundle whose creation is killed
  // from here on can still be removed with `gantry bundle rm`.
  impl->wrote_state = true;
  TRY(common::Wrap(
      common::AtomicWriteFile(dir / kBundleStateFile, StateJson(impl->state).dump(2) + "\n", 0644),
      what));

  const snapshot::MountSpec& m = mounts.front();
  if (options.no_mount && m.type == "bind") {
    impl->view = m.source;
  } else {
    // no_mount: only long enough for MakeSpec to read /etc/passwd, and
    // read-only so that nothing in the snapshot changes.
    ASSIGN_OR_RETURN(impl->mount, common::Wrap(snapshot::MountAt(mounts, impl->rootfs,
                                                                 {.readonly = options.no_mount}),
                                               what));
    impl->view = impl->rootfs;
  }
  return PendingBundle(std::move(impl));
}

Result<BundleInfo> PendingBundle::Commit(json spec) {
  Impl& p = *impl_;
  const std::string what = "create bundle `" + p.dir.string() + "`";
  if (p.committed) return MakeError(Errc::kFailedPrecondition, what + ": already committed");
  BundleInfo info{.dir = p.dir,
                  .config = p.dir / kBundleConfigFile,
                  .rootfs = p.rootfs,
                  .mounted = !p.options.no_mount,
                  .mount_commands = {}};
  if (p.options.no_mount) {
    json mounts = MountsJson(p.mounts);
    if (!spec.contains("annotations")) spec["annotations"] = json::object();
    spec["annotations"][std::string(kAnnotationRootfsMounts)] = mounts.dump();
    for (const auto& m : p.mounts)
      info.mount_commands.push_back(snapshot::MountCommand(m, p.rootfs));
    json file = {{"target", p.rootfs.string()},
                 {"mounts", std::move(mounts)},
                 {"commands", info.mount_commands}};
    p.wrote_mounts_file = true;
    TRY(common::Wrap(common::AtomicWriteFile(p.dir / kBundleMountsFile, file.dump(2) + "\n", 0644),
                     what));
    TRY(common::Wrap(p.mount.Unmount(), what));
  }
  TRY(common::Wrap(common::AtomicWriteFile(info.config, spec.dump(2) + "\n", 0644), what));
  (void)p.mount.release();
  p.committed = true;
  return info;
}

Result<BundleInfo> CreateBundle(const fs::path& dir, const json& spec,
                                const std::vector<snapshot::MountSpec>& mounts,
                                const CreateBundleOptions& options) {
  ASSIGN_OR_RETURN(PendingBundle p, PendingBundle::Begin(dir, mounts, options));
  return p.Commit(spec);
}

// ---- State and removal ------------------------------------------------------------

Result<std::optional<BundleState>> ReadBundleState(const fs::path& dir) {
  const fs::path path = dir / kBundleStateFile;
  auto text = common::ReadFile(path, kMaxStateFile);
  if (!text) {
    if (text.error().code == Errc::kNotFound) return std::optional<BundleState>();
    return std::unexpected(text.error().Wrap("read bundle state"));
  }
  auto bad = [&](const std::string& why) {
    return MakeError(Errc::kDataLoss, "read bundle state `" + path.string() + "`: " + why);
  };
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return bad("not a JSON object");
  if (j.value("version", 0) != kStateVersion) return bad("unknown version");
  BundleState s;
  for (auto [key, out] : {std::pair<const char*, std::string*>{"snapshotter", &s.snapshotter},
                          {"snapshot", &s.snapshot},
                          {"image", &s.image}}) {
    if (!j.contains(key) || !j[key].is_string()) return bad(std::string("no `") + key + "`");
    *out = j[key].get<std::string>();
  }
  for (auto [key, out] : {std::pair<const char*, fs::path*>{"dir", &s.dir}, {"root", &s.root}}) {
    if (!j.contains(key) || !j[key].is_string()) return bad(std::string("no `") + key + "`");
    *out = j[key].get<std::string>();
  }
  for (auto [key, out] :
       {std::pair<const char*, bool*>{"mounted", &s.mounted}, {"created_dir", &s.created_dir}}) {
    if (!j.contains(key) || !j[key].is_boolean()) return bad(std::string("no `") + key + "`");
    *out = j[key].get<bool>();
  }
  if (s.snapshotter != snapshot::KindName(snapshot::Kind::kOverlay) &&
      s.snapshotter != snapshot::KindName(snapshot::Kind::kNative))
    return bad("unknown snapshotter `" + s.snapshotter + "`");
  if (!s.root.is_absolute()) return bad("the store root is not absolute");
  return std::optional<BundleState>(std::move(s));
}

Status RemoveBundle(const fs::path& dir, snapshot::Snapshotter* sn,
                    const std::string& snapshot_key) {
  const std::string what = "remove bundle `" + dir.string() + "`";
  const fs::path rootfs = dir / kBundleRootfsDir;
  ASSIGN_OR_RETURN(std::optional<BundleState> state, common::Wrap(ReadBundleState(dir), what));

  std::optional<snapshot::Info> info;
  if (sn != nullptr && !snapshot_key.empty()) {
    auto i = sn->Stat(snapshot_key);
    if (i) {
      auto it = i->labels.find(std::string(kSnapshotLabelBundle));
      if (it == i->labels.end() || it->second != dir.string())
        return MakeError(Errc::kFailedPrecondition,
                         what + ": snapshot `" + snapshot_key +
                             "` is not this bundle's (labelled " +
                             std::string(kSnapshotLabelBundle) + "=" +
                             (it == i->labels.end() ? "<none>" : it->second) + ")");
      info = std::move(*i);
    } else if (i.error().code != Errc::kNotFound) {
      return std::unexpected(i.error().Wrap(what));
    }
  }
  if (!state && !info && !Exists(dir / kBundleConfigFile))
    return MakeError(Errc::kNotFound,
                     what + ": not a gantry bundle (no " + std::string(kBundleStateFile) + ")");

  // Every mount stacked on rootfs/, not detached: a busy rootfs (a process
  // of this mount namespace inside it) fails here rather than leaving the
  // snapshot's directories in use after their removal.
  for (int i = 0; i < 16 && Exists(rootfs); ++i) {
    ASSIGN_OR_RETURN(bool mp, common::Wrap(IsMountPoint(rootfs), what));
    if (!mp) break;
    if (::umount2(rootfs.c_str(), UMOUNT_NOFOLLOW) != 0) {
      if (errno == EBUSY)
        return MakeError(
            Errc::kFailedPrecondition,
            what + ": `" + rootfs.string() + "` is busy (delete the container that uses it first)");
      return ErrnoError(what + ": unmount `" + rootfs.string() + "`");
    }
  }
  if (Exists(rootfs)) {
    ASSIGN_OR_RETURN(bool empty, common::Wrap(IsEmptyDir(rootfs), what));
    if (!empty)
      return MakeError(
          Errc::kFailedPrecondition,
          what + ": `" + rootfs.string() + "` is not empty once unmounted; it is left as it is");
  }
  if (info) TRY(common::Wrap(sn->Remove(snapshot_key), what));

  // The state file last: until it is gone, `bundle rm` can be run again.
  for (std::string_view f : {kBundleConfigFile, kBundleMountsFile}) {
    if (::unlink((dir / f).c_str()) != 0 && errno != ENOENT)
      return ErrnoError(what + ": remove `" + (dir / f).string() + "`");
  }
  if (::rmdir(rootfs.c_str()) != 0 && errno != ENOENT)
    return ErrnoError(what + ": remove `" + rootfs.string() + "`");
  if (::unlink((dir / kBundleStateFile).c_str()) != 0 && errno != ENOENT)
    return ErrnoError(what + ": remove `" + (dir / kBundleStateFile).string() + "`");
  if (state && state->created_dir && ::rmdir(dir.c_str()) != 0 && errno != ENOENT &&
      errno != ENOTEMPTY)
    LOG(Warn) << "cannot remove the bundle directory" << common::Kv("dir", dir.string())
              << common::Kv("errno", errno);
  return {};
}

}  // namespace bundle
