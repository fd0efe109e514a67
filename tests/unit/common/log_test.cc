// common/log.h: the text and JSON forms of a log line, as written to
// stderr (captured here by pointing fd 2 at a file).

#include "common/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/fs.h"

namespace common {
namespace {

// Runs `emit` with stderr sent to a file; returns what was written.
template <class F>
std::string CaptureStderr(F emit) {
  auto dir = TempDir::Create("gantry-log");
  EXPECT_TRUE(dir) << dir.error().message;
  if (!dir) return {};
  const std::string path = (dir->path() / "stderr").string();
  int file = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(file, 0);
  int saved = ::dup(STDERR_FILENO);
  ::dup2(file, STDERR_FILENO);
  emit();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(file);
  auto text = ReadFile(path);
  EXPECT_TRUE(text) << text.error().message;
  return text ? *text : std::string();
}

class LogFormatTest : public ::testing::Test {
 protected:
  void TearDown() override { SetLogFormat(LogFormat::kText); }
};

TEST_F(LogFormatTest, TextLineHasTimeLevelMessageAndQuotedFields) {
  SetLogFormat(LogFormat::kText);
  std::string line = CaptureStderr(
      [] { LOG(Warn) << "pull " << 3 << " failed" << Kv("ref", "a b") << Kv("n", 7); });
  ASSERT_EQ(line.back(), '\n');
  // 2026-11-27T00:40:01.123Z warn pull 3 failed ref="a b" n=7
  ASSERT_GT(line.size(), 25u);
  EXPECT_EQ(line[4], '-');
  EXPECT_EQ(line[23], 'Z');
  EXPECT_EQ(line.substr(24), " warn pull 3 failed ref=\"a b\" n=7\n");
}

TEST_F(LogFormatTest, JsonLineIsOneObjectWithEveryField) {
  SetLogFormat(LogFormat::kJson);
  std::string line = CaptureStderr([] {
    LOG(Error) << "bad \"thing\"\n"
               << Kv("path", "/x\ty") << Kv("msg", "shadowed") << Kv("ctl", std::string(1, '\x01'));
  });
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
  auto j = nlohmann::json::parse(line, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << line;
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["msg"], "bad \"thing\"\n");
  EXPECT_EQ(j["path"], "/x\ty");
  EXPECT_EQ(j["fields.msg"], "shadowed");
  EXPECT_EQ(j["ctl"], "\x01");
  EXPECT_EQ(j["time"].get<std::string>().size(), 24u);
  EXPECT_EQ(j.size(), 6u) << line;
}

TEST_F(LogFormatTest, ParseLogFormatNamesBothForms) {
  EXPECT_EQ(ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(ParseLogFormat("JSON"), std::nullopt);
}

}  // namespace
}  // namespace common
