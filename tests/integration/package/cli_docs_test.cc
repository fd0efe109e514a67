// The generated man pages and completions (cmake/docs.cmake, `gantry
// __generate`) against the command line itself, and the global options
// accepted after a subcommand. The commands are found by walking the
// `Subcommands:` sections of `gantry --help` and `gantry CMD... --help`,
// not from the generator, so a command registered without a page, a
// completion or a description fails here. Suites CliDocs*, GlobalFlags*.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/process.h"

namespace {

namespace fs = std::filesystem;

const fs::path kBuild = GANTRY_BINARY_DIR;
const std::string kGantry = (kBuild / "src/cli/gantry").string();
const fs::path kDocs = kBuild / "docs";

fixtures::CommandResult Cmd(const std::vector<std::string>& argv) {
  auto r = fixtures::RunCommand(argv);
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : fixtures::CommandResult{};
}

struct Listed {
  std::vector<std::string> words;
  std::string description;
};

// The subcommands `gantry WORDS... --help` lists: "  name   description"
// lines under "Subcommands:", up to the next blank line.
std::vector<Listed> SubcommandsOf(const std::vector<std::string>& words) {
  std::vector<std::string> argv = {kGantry};
  argv.insert(argv.end(), words.begin(), words.end());
  argv.push_back("--help");
  auto r = Cmd(argv);
  std::vector<Listed> out;
  std::istringstream in(r.out);
  std::string line;
  bool in_list = false;
  while (std::getline(in, line)) {
    if (line == "Subcommands:") {
      in_list = true;
      continue;
    }
    if (!in_list) continue;
    if (line.empty()) break;
    std::istringstream fields(line);
    Listed l{words, {}};
    std::string name;
    fields >> name;
    l.words.push_back(name);
    std::getline(fields >> std::ws, l.description);
    out.push_back(l);
  }
  return out;
}

std::vector<Listed> AllCommands() {
  std::vector<Listed> all;
  std::vector<Listed> todo = SubcommandsOf({});
  while (!todo.empty()) {
    Listed c = todo.back();
    todo.pop_back();
    if (c.words == std::vector<std::string>{"runtime"}) {
      all.push_back(c);  // takes its arguments unparsed: `--help` is the runtime's
      continue;
    }
    for (auto& sub : SubcommandsOf(c.words)) todo.push_back(sub);
    all.push_back(c);
  }
  return all;
}

std::string Join(const std::vector<std::string>& w, const std::string& sep) {
  std::string s;
  for (const auto& x : w) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::string ReadFile(const fs::path& p) {
  auto r = common::ReadFile(p);
  return r ? *r : std::string();
}

TEST(CliDocs, TheWalkFindsTheCommands) {
  auto all = AllCommands();
  std::vector<std::string> names;
  for (const auto& c : all) names.push_back(Join(c.words, " "));
  for (const char* expected : {"pull", "images", "snapshot", "snapshot ls", "serve", "runtime"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
}

TEST(CliDocs, EveryCommandHasADescriptionAManPageAndBothCompletions) {
  const std::string bash = ReadFile(kDocs / "completions/gantry");
  const std::string zsh = ReadFile(kDocs / "completions/_gantry");
  ASSERT_FALSE(bash.empty()) << "no bash completion; is the docs target built?";
  ASSERT_FALSE(zsh.empty());
  for (const auto& c : AllCommands()) {
    const std::string name = Join(c.words, " ");
    EXPECT_FALSE(c.description.empty()) << "`gantry " << name << "` has no help text";
    const fs::path page = kDocs / "man1" / ("gantry-" + Join(c.words, "-") + ".1.gz");
    auto text = Cmd({"gzip", "-dc", page.string()});
    EXPECT_EQ(text.exit_code, 0) << page << ": " << text.err;
    EXPECT_NE(text.out.find(".SH NAME"), std::string::npos) << page;
    // Each command has its own arm in both scripts, and is offered as a
    // subcommand of its parent.
    EXPECT_NE(bash.find("'" + name + "')"), std::string::npos) << name;
    EXPECT_NE(zsh.find("'" + name + "')"), std::string::npos) << name;
    EXPECT_NE(zsh.find("'" + c.words.back() + ":"), std::string::npos) << name;
  }
  for (const char* page : {"gantry.1.gz", "gantry-runtime.1.gz"})
    EXPECT_TRUE(fs::exists(kDocs / "man1" / page)) << page;
}

TEST(CliDocs, ManPagesRender) {
  for (const char* page :
       {"gantry.1.gz", "gantry-pull.1.gz", "gantry-snapshot-ls.1.gz", "gantry-runtime.1.gz"}) {
    auto r = Cmd({"sh", "-c",
                  "MANWIDTH=100 man --warnings -l \"$1\" 2>&1 >/dev/null; "
                  "MANWIDTH=100 man -l \"$1\"",
                  "sh", (kDocs / "man1" / page).string()});
    EXPECT_EQ(r.exit_code, 0) << page << ": " << r.err;
    // Nothing but the page: no troff warnings before it.
    EXPECT_EQ(r.out.rfind("GANTRY", 0), 0u) << page << ":\n" << r.out.substr(0, 400);
    EXPECT_NE(r.out.find("NAME"), std::string::npos) << page;
  }
  auto pull = Cmd(
      {"sh", "-c", "MANWIDTH=200 man -l \"$1\"", "sh", (kDocs / "man1/gantry-pull.1.gz").string()});
  EXPECT_NE(pull.out.find("--max-concurrent-downloads"), std::string::npos) << pull.out;
  EXPECT_NE(pull.out.find("GLOBAL OPTIONS"), std::string::npos) << pull.out;
}

// Completes `line` (the word being completed is its last) with the
// generated bash script; returns the candidates, one per line.
std::string BashComplete(const std::string& line) {
  const std::string script =
      "source \"$1\"; read -ra COMP_WORDS <<<\"$2\"; "
      "case \"$2\" in *' ') COMP_WORDS+=(''); esac; COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); "
      "_gantry; printf '%s\\n' \"${COMPREPLY[@]}\"";
  auto r = Cmd({"bash", "-c", script, "bash", (kDocs / "completions/gantry").string(), line});
  EXPECT_EQ(r.exit_code, 0) << line << ": " << r.err;
  return r.out;
}

TEST(CliDocs, BashCompletionCompletesCommandsOptionsAndPaths) {
  auto syntax = Cmd({"bash", "-n", (kDocs / "completions/gantry").string()});
  EXPECT_EQ(syntax.exit_code, 0) << syntax.err;
  EXPECT_EQ(BashComplete("gantry snaps"), "snapshot\n");
  EXPECT_EQ(BashComplete("gantry snapshot l"), "ls\n");
  EXPECT_EQ(BashComplete("gantry --root /x snapshot l"), "ls\n");
  EXPECT_EQ(BashComplete("gantry pull --max-concurrent-d"), "--max-concurrent-downloads\n");
  // The global options are offered after the subcommand too.
  EXPECT_EQ(BashComplete("gantry images --regis"), "--registry-config\n--registries-d\n");
  EXPECT_EQ(BashComplete("gantry load --signature-p"), "--signature-policy\n");
  // --root takes a path: files complete.
  auto dir = common::TempDir::Create("gantry-complete");
  ASSERT_TRUE(dir) << dir.error().message;
  ASSERT_TRUE(common::AtomicWriteFile(dir->path() / "storefile", "x"));
  EXPECT_EQ(BashComplete("gantry images --root " + (dir->path() / "store").string()),
            (dir->path() / "storefile").string() + "\n");
  // gantry runtime: the runtime's own commands.
  EXPECT_EQ(BashComplete("gantry runtime cre"), "create\n");
}

// zsh parses the script, and its table gives a nested command's
// subcommands and the global options after it (the script's last line,
// `_gantry "$@"`, runs only inside zsh's completion system).
TEST(CliDocs, ZshCompletionParsesAndKnowsNestedCommands) {
  const std::string file = (kDocs / "completions/_gantry").string();
  auto syntax = Cmd({"zsh", "-n", file});
  EXPECT_EQ(syntax.exit_code, 0) << syntax.err;
  auto r = Cmd({"zsh", "-c",
                "eval \"$(sed '$d' \"$1\")\"; __gantry_spec snapshot; print -l -- $subnames; "
                "__gantry_spec 'snapshot ls'; print -l -- $fileopts",
                "zsh", file});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("ls\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rm\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--root\n"), std::string::npos) << r.out;
}

TEST(CliDocs, GenerateRejectsAnUnknownKind) {
  auto r = Cmd({kGantry, "__generate", "html", "/nonexistent"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_FALSE(fs::exists("/nonexistent"));
}

// ---- global options after the subcommand ----

class GlobalFlags : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = common::TempDir::Create("gantry-flags");
    ASSERT_TRUE(d) << d.error().message;
    dir_ = std::make_unique<common::TempDir>(std::move(*d));
  }
  fs::path Root() const { return dir_->path() / "root"; }
  std::unique_ptr<common::TempDir> dir_;
};

TEST_F(GlobalFlags, RootAfterTheSubcommandIsTheStoreUsed) {
  auto r = Cmd({kGantry, "images", "--root", Root().string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(Root())) << "images --root did not use " << Root();
}

TEST_F(GlobalFlags, NestedSubcommandTakesRootAndLogLevel) {
  auto r = Cmd({kGantry, "snapshot", "ls", "--root", Root().string(), "--log-level", "debug"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(Root()));
  auto before = Cmd({kGantry, "--root", Root().string(), "--log-level", "debug", "snapshot", "ls"});
  EXPECT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(r.out, before.out);
}

TEST_F(GlobalFlags, BadValueAfterTheSubcommandIsAUsageError) {
  auto r = Cmd({kGantry, "images", "--root", Root().string(), "--log-level", "loud"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--log-level"), std::string::npos) << r.err;
  auto snap = Cmd({kGantry, "images", "--root", Root().string(), "--snapshotter", "zfs"});
  EXPECT_EQ(snap.exit_code, 2) << snap.err;
  auto unknown = Cmd({kGantry, "images", "--root", Root().string(), "--no-such-flag"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;
  EXPECT_FALSE(fs::exists(Root()));
}

// --log-format json: log lines and the final error are JSON objects, one
// a line, with the message and the fields; gantry-serve takes the flag too.
TEST_F(GlobalFlags, LogFormatJsonWritesObjects) {
  auto r = Cmd({kGantry, "--root", Root().string(), "--log-format", "json", "--log-level", "debug",
                "inspect", "no-such-image"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  ASSERT_FALSE(r.err.empty());
  std::istringstream lines(r.err);
  std::string line, last;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << "not JSON: " << line;
    EXPECT_TRUE(j.contains("time") && j.contains("level") && j.contains("msg")) << line;
    last = line;
  }
  auto error = nlohmann::json::parse(last);
  EXPECT_EQ(error["level"], "error");
  EXPECT_EQ(error["exit_code"], "3");
  EXPECT_NE(error["msg"].get<std::string>().find("no-such-image"), std::string::npos) << last;

  auto serve = Cmd(
      {kGantry, "serve", "--root", Root().string(), "--log-format", "json", "--socket-mode", "9z"});
  EXPECT_EQ(serve.exit_code, 2) << serve.err;
  auto bad = Cmd({kGantry, "images", "--root", Root().string(), "--log-format", "xml"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--log-format"), std::string::npos) << bad.err;
}

// `gantry serve` execs gantry-serve with the same command line, which must
// accept the global option after `serve` too: it gets as far as gantry-serve's
// own check of --socket-mode.
TEST_F(GlobalFlags, ServePassesThemToGantryServe) {
  auto r = Cmd(
      {kGantry, "serve", "--root", Root().string(), "--log-level", "debug", "--socket-mode", "9z"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--socket-mode `9z`: not an octal mode"), std::string::npos) << r.err;
}

}  // namespace
