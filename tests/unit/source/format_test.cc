// Every C++ file under src/ and tests/ is formatted as the repository's
// .clang-format says: `clang-format-14 -i FILE` would change nothing.
// Fix a failure with `clang-format-14 -i` on the files named.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "fixtures/process.h"

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> CppSources() {
  std::vector<fs::path> files;
  for (const char* top : {"src", "tests"}) {
    for (const auto& e : fs::recursive_directory_iterator(fs::path(GANTRY_SOURCE_DIR) / top)) {
      const auto ext = e.path().extension();
      if (e.is_regular_file() && (ext == ".cc" || ext == ".h")) files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(FormatCheck, EveryCppFileIsFormattedAsClangFormatSays) {
  ASSERT_TRUE(fs::exists(fs::path(GANTRY_SOURCE_DIR) / ".clang-format"));
  ASSERT_NE(fixtures::FindExecutable("clang-format-14"), std::nullopt)
      << "clang-format-14 is needed (scripts/setup.sh installs it)";
  const std::vector<fs::path> files = CppSources();
  ASSERT_GT(files.size(), 100u) << "the source tree was not found under " << GANTRY_SOURCE_DIR;
  constexpr size_t kBatch = 64;
  for (size_t at = 0; at < files.size(); at += kBatch) {
    std::vector<std::string> argv = {"clang-format-14", "--dry-run", "--Werror", "--style=file"};
    for (size_t i = at; i < std::min(files.size(), at + kBatch); ++i)
      argv.push_back(files[i].string());
    auto r = fixtures::RunCommand(argv, {});
    ASSERT_TRUE(r) << r.error().message;
    // --dry-run prints one "FILE:LINE:COL: error: code should be
    // clang-formatted" block per difference.
    EXPECT_EQ(r->exit_code, 0) << r->err.substr(0, 4000);
  }
}

}  // namespace
