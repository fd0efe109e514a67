// Runs a fuzz target's whole corpus, testdata/fuzz/NAME/ (seeds and the
// inputs of every crash found so far), through its LLVMFuzzerTestOneInput.
// A crash, an abort (a broken invariant) or a sanitizer report kills the
// test binary, which fails the test; the input being run is printed first.
// The test is named after the fuzz executable: FuzzCorpus.fuzz_NAME.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "common/fs.h"
#include "fuzz_util.h"

namespace {

namespace fs = std::filesystem;

TEST(FuzzCorpus, GANTRY_FUZZ_NAME) {
  const fs::path dir = GANTRY_FUZZ_CORPUS;
  std::vector<fs::path> inputs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file()) inputs.push_back(e.path());
  ASSERT_FALSE(ec) << "list " << dir << ": " << ec.message();
  ASSERT_FALSE(inputs.empty()) << "no corpus in " << dir;
  std::sort(inputs.begin(), inputs.end());
  for (const fs::path& input : inputs) {
    auto data = common::ReadFile(input);
    ASSERT_TRUE(data.has_value()) << data.error().message;
    std::cerr << "run " << input.filename().string() << std::endl;
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data->data()), data->size()),
              0)
        << input;
  }
}

}  // namespace
