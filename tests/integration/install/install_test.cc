// `cmake --install BUILD --prefix P` (cmake/install.cmake): what lands
// under P, and that the installed binaries work from there, away from the
// build tree. The tree installed is the one this test was built in.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/fd.h"
#include "fixtures/process.h"

#ifndef GANTRY_CMAKE
#error "GANTRY_CMAKE must name the cmake executable"
#endif

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fixtures::CommandResult RunCmd(const std::vector<std::string>& argv) {
  auto r = fixtures::RunCommand(argv, {.env = {},
                                       .cwd = {},
                                       .stdin_data = {},
                                       .timeout = std::chrono::minutes(5),
                                       .measure_peak_rss = false});
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : fixtures::CommandResult{};
}

bool IsExecutableFile(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IXUSR) != 0;
}

// One install for the whole suite: copying the binaries is most of its cost.
class Install : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = common::TempDir::Create("gantry-install");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = new common::TempDir(std::move(*dir));
    prefix_ = dir_->path() / "prefix";
    auto r = RunCmd({GANTRY_CMAKE, "--install", GANTRY_BINARY_DIR, "--prefix", prefix_.string()});
    install_exit_ = r.exit_code;
    install_log_ = r.out + r.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(install_exit_, 0) << install_log_; }

  static inline common::TempDir* dir_ = nullptr;
  static inline fs::path prefix_;
  static inline int install_exit_ = -1;
  static inline std::string install_log_;
};

TEST_F(Install, PutsTheThreeExecutablesSideBySideInBin) {
  for (const char* exe : {"gantry", "gantry-serve", "gantry-runtime"})
    EXPECT_TRUE(IsExecutableFile(prefix_ / "bin" / exe)) << exe << "\n" << install_log_;
}

TEST_F(Install, ExecutablesCarryNoPathIntoTheBuildTree) {
  if (fixtures::FindExecutable("readelf") == std::nullopt) {
    FAIL() << "readelf (binutils, scripts/setup.sh) is needed";
  }
  for (const char* exe : {"gantry", "gantry-serve", "gantry-runtime"}) {
    auto r = RunCmd({"readelf", "-d", (prefix_ / "bin" / exe).string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find("RPATH"), std::string::npos) << exe << ":\n" << r.out;
    EXPECT_EQ(r.out.find("RUNPATH"), std::string::npos) << exe << ":\n" << r.out;
    EXPECT_EQ(r.out.find(GANTRY_BINARY_DIR), std::string::npos) << exe << ":\n" << r.out;
  }
}

TEST_F(Install, InstalledCommandsRunFromThePrefix) {
  auto version = RunCmd({(prefix_ / "bin/gantry").string(), "--version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_NE(version.out.find("gantry"), std::string::npos) << version.out;
  auto runtime = RunCmd({(prefix_ / "bin/gantry-runtime").string(), "--version"});
  EXPECT_EQ(runtime.exit_code, 0) << runtime.err;
  EXPECT_FALSE(runtime.out.empty());
}

// `gantry serve` replaces itself with the gantry-serve beside it: once the
// socket is up, the process is the installed gantry-serve, not the build
// tree's.
TEST_F(Install, InstalledGantryServeIsTheServerGantryServeRuns) {
  const fs::path socket = dir_->path() / "serve.sock";
  const fs::path log = dir_->path() / "serve.log";
  fixtures::SpawnOptions spawn;
  spawn.argv = {(prefix_ / "bin/gantry").string(),
                "--root",
                (dir_->path() / "root").string(),
                "serve",
                "--listen",
                "unix://" + socket.string()};
  spawn.stdout_path = log;
  spawn.stderr_path = log;
  auto child = fixtures::Child::Spawn(spawn);
  ASSERT_TRUE(child) << child.error().message;
  const bool up = fixtures::WaitUntil([&] { return fs::exists(socket) || child->Exited(); }, 60s);
  ASSERT_TRUE(up && fs::exists(socket)) << ReadFile(log);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/" + std::to_string(child->pid()) + "/exe", ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(exe, prefix_ / "bin/gantry-serve");
  auto code = child->Terminate(30s);
  ASSERT_TRUE(code) << code.error().message;
  EXPECT_EQ(*code, 0) << ReadFile(log);
}

TEST_F(Install, SystemdUnitsNameTheInstalledGantry) {
  const fs::path units = prefix_ / "lib/systemd/system";
  ASSERT_TRUE(fs::exists(units / "gantry.socket")) << install_log_;
  const std::string service = ReadFile(units / "gantry.service");
  ASSERT_FALSE(service.empty()) << install_log_;
  const std::string exec_start = "ExecStart=" + (prefix_ / "bin/gantry").string() + " ";
  EXPECT_NE(service.find(exec_start), std::string::npos) << service;
  EXPECT_EQ(service.find("/usr/local/bin"), std::string::npos) << service;
  // Everything else is the unit in contrib/, unchanged.
  std::string back = service;
  const std::string bin = (prefix_ / "bin").string();
  for (size_t at = back.find(bin); at != std::string::npos; at = back.find(bin, at))
    back.replace(at, bin.size(), "/usr/local/bin");
  EXPECT_EQ(back, ReadFile(fs::path(GANTRY_SOURCE_DIR) / "contrib/systemd/gantry.service"));
}

TEST_F(Install, DocsGoToShareDocGantry) {
  const fs::path docs = prefix_ / "share/doc/gantry";
  EXPECT_TRUE(fs::exists(docs / "README.md"));
  for (const auto& entry : fs::directory_iterator(fs::path(GANTRY_SOURCE_DIR) / "docs")) {
    if (entry.path().extension() != ".md") continue;
    EXPECT_EQ(ReadFile(docs / entry.path().filename()), ReadFile(entry.path()))
        << entry.path().filename();
  }
}

}  // namespace
