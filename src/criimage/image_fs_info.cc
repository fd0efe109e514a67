// ImageFsInfo: the store's filesystem usage. Containers' writable layers
// (bundles' active snapshots) live in the same store, so
// container_filesystems reports the same filesystem.

#include <sys/stat.h>

#include <chrono>
#include <set>

#include "criimage/rpc_util.h"
#include "criimage/services.h"

namespace criimage {
namespace {

struct Usage {
  uint64_t bytes = 0;
  uint64_t inodes = 0;
};

// Allocated bytes and inodes under `root`, each inode once (hard links),
// not crossing into other filesystems (mounted rootfs views).
Usage StoreUsage(const std::filesystem::path& root) {
  Usage u;
  struct stat rst {};
  if (::lstat(root.c_str(), &rst) != 0) return u;
  std::set<std::pair<dev_t, ino_t>> seen;
  std::error_code ec;
  auto it = std::filesystem::recursive_directory_iterator(
      root, std::filesystem::directory_options::skip_permission_denied, ec);
  for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    if (st.st_dev != rst.st_dev) {
      if (S_ISDIR(st.st_mode)) it.disable_recursion_pending();
      continue;
    }
    if (!seen.emplace(st.st_dev, st.st_ino).second) continue;
    u.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    u.inodes += 1;
  }
  return u;
}

}  // namespace

grpc::Status ImageServiceImpl::ImageFsInfo(grpc::ServerContext*,
                                           const runtime::v1::ImageFsInfoRequest*,
                                           runtime::v1::ImageFsInfoResponse* resp) {
  RpcLog log("ImageFsInfo", "");
  const Usage u = StoreUsage(s_->root);
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (auto* fs : {resp->add_image_filesystems(), resp->add_container_filesystems()}) {
    fs->set_timestamp(now);
    fs->mutable_fs_id()->set_mountpoint(s_->root.string());
    fs->mutable_used_bytes()->set_value(u.bytes);
    fs->mutable_inodes_used()->set_value(u.inodes);
  }
  return log.Done(grpc::Status::OK);
}

}  // namespace criimage
