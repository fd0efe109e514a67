// `gantry serve` runs the gantry-serve executable found beside gantry, and
// gantry itself does not load gRPC, protobuf or abseil (issue 14: the
// everyday commands paid ~29 ms of start-up for them), nor the registry
// door's HTTP server (libmicrohttpd). The binaries under
// test are the build tree's; copies in a temp dir stand for installs.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/fd.h"
#include "fixtures/process.h"

#ifndef GANTRY_BIN
#error "GANTRY_BIN must name the gantry binary"
#endif

namespace {

namespace fs = std::filesystem;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class ServeExec : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = common::TempDir::Create("gantry-serve-exec");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    gantry_ = dir_.path() / "gantry";
    std::error_code ec;
    fs::copy_file(GANTRY_BIN, gantry_, ec);
    ASSERT_FALSE(ec) << "copy " << GANTRY_BIN << ": " << ec.message();
  }

  fixtures::CommandResult Run(const std::vector<std::string>& argv) {
    auto r = fixtures::RunCommand(argv, {.env = {},
                                         .cwd = {},
                                         .stdin_data = {},
                                         .timeout = std::chrono::seconds(30),
                                         .measure_peak_rss = false});
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : fixtures::CommandResult{};
  }

  common::TempDir dir_;
  fs::path gantry_;
};

TEST_F(ServeExec, WithoutGantryServeBesideItFailsWithOneLineNamingThePath) {
  auto r = Run({gantry_.string(), "--root", (dir_.path() / "root").string(), "serve", "--listen",
                "unix://" + (dir_.path() / "s.sock").string()});
  EXPECT_NE(r.exit_code, 0);
  auto lines = Lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find((dir_.path() / "gantry-serve").string()), std::string::npos) << r.err;
  EXPECT_EQ(lines[0].rfind("gantry: ", 0), 0u) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_FALSE(fs::exists(dir_.path() / "s.sock"));
}

TEST_F(ServeExec, HelpListsTheServeFlagsWithoutGantryServe) {
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {gantry_.string(), "serve", "--help"}, {gantry_.string(), "help", "serve"}}) {
    auto r = Run(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (const char* flag :
         {"--listen", "--socket-mode", "--max-parallel-pulls", "--pinned", "--min-rate",
          "--max-layers", "--registry-listen", "--registry-allow-remote"})
      EXPECT_NE(r.out.find(flag), std::string::npos) << flag << " in\n" << r.out;
  }
  auto top = Run({gantry_.string(), "--help"});
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_NE(top.out.find("serve"), std::string::npos) << top.out;
}

TEST_F(ServeExec, BadServeFlagsAreUsageErrorsWithoutGantryServe) {
  auto r = Run({gantry_.string(), "serve", "--max-parallel-pulls", "0"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
}

TEST_F(ServeExec, PassesTheWholeCommandLineThroughUnchangedAndKeepsThePid) {
  // A stand-in gantry-serve that reports what it was given.
  const fs::path fake = dir_.path() / "gantry-serve";
  {
    std::ofstream out(fake);
    out << "#!/bin/sh\n"
           "echo \"pid:$$\"\n"
           "echo \"$0\"\n"
           "for a in \"$@\"; do echo \"arg:$a\"; done\n"
           "exit 7\n";
  }
  fs::permissions(fake, fs::perms::owner_all);
  const std::vector<std::string> args = {"--root",
                                         (dir_.path() / "root").string(),
                                         "--log-level",
                                         "debug",
                                         "serve",
                                         "--listen",
                                         "unix:///x.sock",
                                         "--pinned",
                                         "a b"};
  fixtures::SpawnOptions spawn;
  spawn.argv = {gantry_.string()};
  spawn.argv.insert(spawn.argv.end(), args.begin(), args.end());
  spawn.stdout_path = dir_.path() / "out";
  spawn.stderr_path = dir_.path() / "err";
  auto child = fixtures::Child::Spawn(spawn);
  ASSERT_TRUE(child) << child.error().message;
  const pid_t pid = child->pid();
  auto code = child->Wait();
  ASSERT_TRUE(code) << code.error().message;
  std::stringstream out, err;
  out << std::ifstream(dir_.path() / "out").rdbuf();
  err << std::ifstream(dir_.path() / "err").rdbuf();
  EXPECT_EQ(*code, 7) << err.str();
  auto lines = Lines(out.str());
  ASSERT_EQ(lines.size(), args.size() + 2) << out.str();
  EXPECT_EQ(lines[0], "pid:" + std::to_string(pid));
  EXPECT_EQ(lines[1], fake.string());
  for (size_t i = 0; i < args.size(); ++i) EXPECT_EQ(lines[i + 2], "arg:" + args[i]);
}

TEST(GantryBinary, NeedsNoGrpcProtobufOrAbseil) {
  // binutils is installed by scripts/setup.sh (the linker is in it too).
  auto readelf = fixtures::FindExecutable("readelf");
  ASSERT_TRUE(readelf) << "readelf (binutils) not found";
  auto r = fixtures::RunCommand({readelf->string(), "-d", "-W", GANTRY_BIN});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << r->err;
  int needed = 0;
  for (const auto& line : Lines(r->out)) {
    if (line.find("(NEEDED)") == std::string::npos) continue;
    ++needed;
    for (const char* lib :
         {"libgrpc", "libgpr", "libprotobuf", "libabsl", "libupb", "libmicrohttpd"})
      EXPECT_EQ(line.find(lib), std::string::npos) << line;
  }
  EXPECT_GT(needed, 0) << r->out;
}

}  // namespace
