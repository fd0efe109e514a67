// gantry-runtime is the OCI runtime only (src/ociruntime/): it neither
// loads nor contains the store, SQLite, curl, gRPC or the bundle code
// (src/bundle/), which every container start would otherwise pay for. The
// binary under test is the build tree's; binutils (readelf, nm) is
// installed by scripts/setup.sh.

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fixtures/process.h"

#ifndef GANTRY_RUNTIME_BIN
#error "GANTRY_RUNTIME_BIN must name the gantry-runtime binary"
#endif

namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string RunTool(const std::string& tool, const std::vector<std::string>& args) {
  auto path = fixtures::FindExecutable(tool);
  if (!path) {
    ADD_FAILURE() << tool << " (binutils) not found";
    return "";
  }
  std::vector<std::string> argv{path->string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = fixtures::RunCommand(argv);
  if (!r) {
    ADD_FAILURE() << r.error().message;
    return "";
  }
  EXPECT_EQ(r->exit_code, 0) << r->err;
  return r->out;
}

TEST(GantryRuntimeBinary, NeedsNoStoreSqliteCurlOrGrpc) {
  int needed = 0;
  for (const auto& line : Lines(RunTool("readelf", {"-d", "-W", GANTRY_RUNTIME_BIN}))) {
    if (line.find("(NEEDED)") == std::string::npos) continue;
    ++needed;
    for (const char* lib : {"libsqlite3", "libcurl", "libarchive", "libcrypto", "libssl", "libzstd",
                            "libz.", "libgrpc", "libprotobuf", "libabsl"})
      EXPECT_EQ(line.find(lib), std::string::npos) << line;
  }
  EXPECT_GT(needed, 0);
}

// Linked statically, the other libraries would not show as NEEDED: their
// code would.
TEST(GantryRuntimeBinary, HoldsNoCodeOfTheOtherLibraries) {
  int symbols = 0;
  for (const auto& line : Lines(RunTool("nm", {"-C", "--defined-only", GANTRY_RUNTIME_BIN}))) {
    // "ADDRESS TYPE NAME"
    auto first = line.find(' ');
    if (first == std::string::npos) continue;
    auto second = line.find(' ', first + 1);
    if (second == std::string::npos) continue;
    std::string_view name = std::string_view(line).substr(second + 1);
    ++symbols;
    for (std::string_view prefix : {"store::", "registry::", "snapshot::", "unpack::", "image::",
                                    "upkeep::", "bundle::", "criimage::", "sqlite3_", "curl_"})
      EXPECT_FALSE(name.starts_with(prefix)) << line;
  }
  EXPECT_GT(symbols, 0);
}

}  // namespace
