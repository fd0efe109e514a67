#include "store/lease_hold.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "common/fs.h"
#include "store/lock_internal.h"

namespace store {
namespace {

namespace fs = std::filesystem;
using common::Errc;

constexpr std::string_view kTempPrefix = ".tmp-";
// A temporary file younger than this may belong to a Take in progress.
constexpr std::chrono::seconds kTempMinAge{60};

bool IsLeaseId(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

std::string RandomSuffix() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string s(12, '0');
  for (auto& c : s) c = kHex[rd() % 16];
  return s;
}

// Whether nobody holds the lock of `path`: true when the probe got it (the
// probe's descriptor is closed at once). A file that vanished is not
// abandoned (its holder released it).
common::Result<bool> Unlocked(const fs::path& path) {
  auto fd = common::Open(path.string(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (!fd) {
    if (fd.error().code == Errc::kNotFound) return false;
    return std::unexpected(std::move(fd.error()));
  }
  return internal::FlockTry(fd->get(), LOCK_EX, "`" + path.string() + "`");
}

bool OldEnough(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return false;
  return ::time(nullptr) - st.st_mtim.tv_sec >= kTempMinAge.count();
}

}  // namespace

common::Result<LeaseHold> LeaseHold::Take(const fs::path& root, std::string_view lease) {
  if (!IsLeaseId(lease))
    return common::MakeError(Errc::kInvalidArgument,
                             "hold lease `" + std::string(lease) + "`: not a lease id");
  const fs::path dir = Dir(root);
  TRY(common::MkdirAll(dir, 0700));
  const fs::path path = dir / std::string(lease);
  const fs::path tmp = dir / (std::string(kTempPrefix) + std::string(lease) + "-" + RandomSuffix());
  const std::string what = "hold lease `" + path.string() + "`";
  ASSIGN_OR_RETURN(
      common::UniqueFd fd,
      common::Open(tmp.string(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  auto got = internal::FlockTry(fd.get(), LOCK_EX, what);
  if (!got || !*got) {
    ::unlink(tmp.c_str());
    if (!got) return std::unexpected(std::move(got.error()));
    return common::MakeError(Errc::kInternal, what + ": a fresh file is locked");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto err = common::ErrnoError(what);
    ::unlink(tmp.c_str());
    return err;
  }
  return LeaseHold(path, std::string(lease), std::move(fd));
}

void LeaseHold::Release() {
  if (!fd_.valid()) return;
  ::unlink(path_.c_str());
  Drop();
}

common::Result<std::vector<std::string>> AbandonedLeases(const fs::path& root) {
  std::vector<std::string> out;
  const fs::path dir = LeaseHold::Dir(root);
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return out;
    return common::ErrnoError("list `" + dir.string() + "`", ec.value());
  }
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!IsLeaseId(name)) continue;
    ASSIGN_OR_RETURN(bool unlocked, Unlocked(it->path()));
    if (unlocked) out.push_back(name);
  }
  if (ec) return common::ErrnoError("list `" + dir.string() + "`", ec.value());
  std::sort(out.begin(), out.end());
  return out;
}

common::Status RemoveAbandonedHolds(const fs::path& root, const std::vector<std::string>& leases) {
  const fs::path dir = LeaseHold::Dir(root);
  std::vector<fs::path> candidates;
  for (const auto& id : leases)
    if (IsLeaseId(id)) candidates.push_back(dir / id);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().starts_with(kTempPrefix) && OldEnough(it->path()))
      candidates.push_back(it->path());
  if (ec && ec != std::errc::no_such_file_or_directory)
    return common::ErrnoError("list `" + dir.string() + "`", ec.value());
  for (const auto& p : candidates) {
    ASSIGN_OR_RETURN(bool unlocked, Unlocked(p));
    if (unlocked && ::unlink(p.c_str()) != 0 && errno != ENOENT)
      return common::ErrnoError("remove `" + p.string() + "`");
  }
  return {};
}

}  // namespace store
