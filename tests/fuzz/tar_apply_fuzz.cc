// Layer apply (unpack/apply.h): the input is an uncompressed tar layer,
// applied into fresh temporary roots, unprivileged whatever the uid (so
// that an input behaves the same for root and for a user, and the fuzzer
// never chowns or makes devices), on the calling thread (deterministic):
//  - into root `a` in overlay mode (whiteouts become 0/0 char devices and
//    opaque xattrs), with openat2;
//  - into root `b` in native mode (whiteouts delete), then the same layer
//    again on top of that result with the portable component walk, so that
//    every entry also replaces one that already exists.
// The roots are created in a directory that holds nothing else but a
// canary file: the safety contract says no entry can create or change
// anything outside the root, so anything else appearing there, or the
// canary changing, aborts; so does a `.wh.` name in a result.

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.h"
#include "common/fs.h"
#include "fuzz_util.h"
#include "unpack/apply.h"

namespace {

constexpr std::string_view kCanaryContent = "canary: no layer may change this file\n";

class MemorySource final : public unpack::ByteSource {
 public:
  explicit MemorySource(std::string_view data) : data_(data) {}
  common::Result<size_t> Read(std::span<std::byte> buf) override {
    size_t n = std::min(buf.size(), data_.size());
    std::memcpy(buf.data(), data_.data(), n);
    data_.remove_prefix(n);
    return n;
  }

 private:
  std::string_view data_;
};

// The entries of `dir` but "." and "..", in directory order.
std::vector<std::string> Names(DIR* dir) {
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(dir)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  return names;
}

// A layer may leave directories without permissions (mode 0) and paths
// longer than PATH_MAX, so removal is fd-relative and makes each directory
// accessible before entering it. Returns false on failure. On the way it
// checks that no `.wh.` entry was materialised, in either whiteout mode,
// even by an apply that failed part-way.
bool RemoveAt(int parent_fd, const char* name) {
  fuzz::Check(!std::string_view(name).starts_with(".wh."), "a .wh. entry was created");
  struct stat st {};
  if (::fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT;
  if (!S_ISDIR(st.st_mode)) return ::unlinkat(parent_fd, name, 0) == 0;
  if ((st.st_mode & 0700) != 0700 && ::fchmodat(parent_fd, name, 0700, 0) != 0) return false;
  int dfd = ::openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return false;
  DIR* dir = ::fdopendir(dfd);
  if (dir == nullptr) {
    ::close(dfd);
    return false;
  }
  bool ok = true;
  for (const std::string& n : Names(dir)) ok = RemoveAt(::dirfd(dir), n.c_str()) && ok;
  ::closedir(dir);
  return ok && ::unlinkat(parent_fd, name, AT_REMOVEDIR) == 0;
}

std::vector<std::string> List(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  fuzz::Check(d != nullptr, "open the sandbox");
  std::vector<std::string> names = Names(d);
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

bool IsDirectory(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void Apply(std::string_view layer, const std::string& root, unpack::WhiteoutMode mode,
           bool use_openat2) {
  auto root_fd = common::Open(root, O_PATH | O_DIRECTORY);
  fuzz::Check(root_fd.has_value(), "open the root");
  MemorySource in(layer);
  unpack::ApplyOptions options{
      .compression = oci::Compression::kNone,
      .whiteouts = mode,
      .limits = {},
      .privileged = false,
      .expected_diff_id = std::nullopt,
      .expected_blob_digest = std::nullopt,
      .cancel = nullptr,
      .gzip_decoder = unpack::GzipDecoder::kIsal,
      .decode_thread = false,
      .file_thread = false,
      .use_openat2 = use_openat2,
  };
  // Hostile layers are refused with an error; only crashes and escapes count.
  (void)unpack::ApplyLayer(in, root_fd->get(), options);
}

void RaiseFdLimit() {
  // The removal holds one descriptor per directory level; a layer can nest
  // up to max_path_length / 2 levels.
  static const bool once = [] {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      (void)::setrlimit(RLIMIT_NOFILE, &rl);
    }
    return true;
  }();
  (void)once;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  RaiseFdLimit();
  auto sandbox = common::TempDir::Create("gantry-fuzz-tar");
  fuzz::Check(sandbox.has_value(), "create the sandbox");
  const std::string dir = sandbox->release().string();
  const std::string canary = dir + "/canary";
  {
    auto fd = common::Open(canary, O_WRONLY | O_CREAT | O_EXCL, 0644);
    fuzz::Check(fd.has_value() && common::WriteAll(fd->get(), kCanaryContent).has_value(),
                "write the canary");
  }
  fuzz::Check(::mkdir((dir + "/a").c_str(), 0755) == 0 && ::mkdir((dir + "/b").c_str(), 0755) == 0,
              "create the roots");

  std::string_view layer = fuzz::AsText(data, size);
  Apply(layer, dir + "/a", unpack::WhiteoutMode::kOverlay, true);
  Apply(layer, dir + "/b", unpack::WhiteoutMode::kNative, true);
  Apply(layer, dir + "/b", unpack::WhiteoutMode::kNative, false);

  fuzz::Check(List(dir) == std::vector<std::string>{"a", "b", "canary"},
              "the sandbox holds only the roots and the canary");
  fuzz::Check(IsDirectory(dir + "/a") && IsDirectory(dir + "/b"), "the roots are directories");
  struct stat st {};
  fuzz::Check(::lstat(canary.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1,
              "the canary is a regular file with one link");
  auto content = common::ReadFile(canary);
  fuzz::Check(content.has_value() && *content == kCanaryContent, "the canary is unchanged");

  fuzz::Check(RemoveAt(AT_FDCWD, dir.c_str()), "remove the sandbox");
  return 0;
}
