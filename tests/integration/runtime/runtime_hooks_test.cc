// Lifecycle hooks under gantry-runtime, runc and crun: order, the state on
// stdin, env, where they run, and failures that leave nothing behind.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/fs.h"
#include "integration/runtime/runtime_helpers.h"

namespace {

using rttest::json;
using rttest::Runtime;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

class RuntimeHooks : public rttest::RuntimeSuite {
 protected:
  // A hook that appends its kind to `out`/order and saves its stdin and
  // $HOOK_ENV as `out`/<kind>.json and .env. `root` is where `out` is seen
  // from where the hook runs ("/tmp" inside the container).
  static json Hook(const std::string& kind, const std::string& root) {
    std::string script = "echo " + kind + " >> " + root + "/order; cat > " + root + "/" + kind +
                         ".json; echo \"$HOOK_ENV\" > " + root + "/" + kind + ".env";
    return {{"path", "/bin/sh"},
            {"args", {"sh", "-c", script}},
            {"env", {"HOOK_ENV=" + kind + "-env", "PATH=/bin:/usr/bin"}},
            {"timeout", 10}};
  }
};

TEST_F(RuntimeHooks, RuntimeHooksRunInOrderWithStateOnStdin) {
  // Each runtime's documents, the pid written as "init" where it is the
  // init's pid on the host, the bundle as "BUNDLE", without the id (each
  // runtime has its own bundle and container) and ociVersion (each gives
  // the spec version it implements).
  std::map<std::string, std::map<std::string, json>> docs;
  for (const Runtime& rt : runtimes_) {
    fs::path out = dir_.path() / ("out-" + rt.name);
    fs::create_directories(out);
    rttest::Bundle b = rttest::MakeBundle({"sh", "-c", "echo process >> /tmp/order"});
    b.config["mounts"].push_back({{"destination", "/tmp"},
                                  {"type", "bind"},
                                  {"source", out.string()},
                                  {"options", {"rbind", "rw"}}});
    b.config["annotations"] = {{"org.example.hooks", "yes"}};
    const std::string host = out.string();
    b.config["hooks"] = {{"prestart", {Hook("prestart", host)}},
                         {"createRuntime", {Hook("createRuntime", host)}},
                         {"createContainer", {Hook("createContainer", host)}},
                         {"startContainer", {Hook("startContainer", "/tmp")}},
                         {"poststart", {Hook("poststart", host)}},
                         {"poststop", {Hook("poststop", host)}}};
    b.Write();
    std::string id = rttest::UniqueId("hk-" + rt.name);
    auto c =
        rt.Detached({"create", "--bundle", b.path().string(), id}, dir_.path() / (id + ".log"));
    ASSERT_EQ(c.exit_code, 0) << rt.name << ": " << c.err;
    pid_t pid = (*rt.State(id))["pid"];
    auto s = rt.Cmd({"start", id});
    ASSERT_EQ(s.exit_code, 0) << rt.name << ": " << s.err;
    ASSERT_TRUE(rt.WaitStatus(id, "stopped")) << rt.name;
    auto d = rt.Cmd({"delete", id});
    ASSERT_EQ(d.exit_code, 0) << rt.name << ": " << d.err;

    auto order = common::ReadFile(out / "order");
    ASSERT_TRUE(order) << rt.name;
    // Lines of the order file, and where `what` is among them.
    std::vector<std::string> lines;
    {
      std::istringstream in(*order);
      for (std::string l; std::getline(in, l);) lines.push_back(l);
    }
    auto at = [&](const std::string& what) {
      return std::find(lines.begin(), lines.end(), what) - lines.begin();
    };
    // What the three runtimes agree on: the create hooks in order, then
    // startContainer before the process, poststop last. (poststart runs
    // once the process was let go: before or after startContainer.)
    ASSERT_EQ(lines.size(), 7u) << rt.name << ": " << *order;
    EXPECT_EQ(std::vector<std::string>(lines.begin(), lines.begin() + 3),
              (std::vector<std::string>{"prestart", "createRuntime", "createContainer"}))
        << rt.name << ": " << *order;
    EXPECT_LT(at("startContainer"), at("process")) << rt.name << ": " << *order;
    EXPECT_LT(at("poststart"), 6) << rt.name << ": " << *order;
    EXPECT_EQ(lines.back(), "poststop") << rt.name << ": " << *order;

    for (const char* kind : {"prestart", "createRuntime", "createContainer", "startContainer",
                             "poststart", "poststop"}) {
      auto text = common::ReadFile(out / (std::string(kind) + ".json"));
      ASSERT_TRUE(text) << rt.name << " " << kind;
      json j = json::parse(*text, nullptr, false);
      ASSERT_TRUE(j.is_object()) << rt.name << " " << kind << ": " << *text;
      EXPECT_EQ(j["id"], id) << rt.name << " " << kind;
      EXPECT_EQ(j["annotations"]["org.example.hooks"], "yes") << rt.name << " " << kind;
      EXPECT_TRUE(j.contains("ociVersion")) << rt.name << " " << kind;
      auto env = common::ReadFile(out / (std::string(kind) + ".env"));
      EXPECT_EQ(env.value_or(""), std::string(kind) + "-env\n") << rt.name;
      // Hooks in the runtime's namespaces: all agree on bundle and pid.
      // (Inside the container runc reports the pid there, crun none.)
      std::string k = kind;
      if (k == "prestart" || k == "createRuntime" || k == "poststart" || k == "poststop") {
        EXPECT_EQ(j["bundle"], b.path().string()) << rt.name << " " << kind;
      }
      if (k == "prestart" || k == "createRuntime" || k == "poststart") {
        EXPECT_EQ(j.value("pid", 0), pid) << rt.name << " " << kind;
      }
      if (j.contains("pid") && j["pid"] == pid) j["pid"] = "init";
      if (j.value("bundle", "") == b.path().string()) j["bundle"] = "BUNDLE";
      j.erase("ociVersion");
      j.erase("id");
      docs[rt.name][kind] = j;
    }
    EXPECT_EQ(json::parse(*common::ReadFile(out / "poststop.json"))["status"], "stopped")
        << rt.name;
  }
  // gantry's documents are runc's: createContainer and startContainer, run in the container's
  // pid namespace, get the pid seen there (1), as the spec says. But for
  // poststart, which runc 1.1 runs during create and tells "created"; the
  // process runs by then under crun and gantry: "running". (crun 1.8.1
  // also differs elsewhere: pid 0 in the container, "created" to
  // prestart, "starting" and bundle "/" to startContainer.)
  for (const auto& [kind, j] : docs["gantry"]) {
    json runc = docs["runc"][kind];
    if (kind == "poststart") {
      EXPECT_EQ(j["status"], docs["crun"][kind]["status"]) << kind;
      runc["status"] = j["status"];
    }
    EXPECT_EQ(j, runc) << kind;
  }
  EXPECT_EQ(docs["gantry"]["createContainer"]["pid"], 1);
  EXPECT_EQ(docs["gantry"]["startContainer"]["pid"], 1);
}

TEST_F(RuntimeHooks, RuntimeFailingPrestartHookLeavesNothing) {
  for (const Runtime& rt : runtimes_) {
    rttest::Bundle b = rttest::MakeBundle({"true"});
    b.config["hooks"] = {
        {"prestart",
         {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "echo hook-said-no >&2; exit 3"}}}}}};
    b.Write();
    std::string id = rttest::UniqueId("hkf-" + rt.name);
    auto c =
        rt.Detached({"create", "--bundle", b.path().string(), id}, dir_.path() / (id + ".log"));
    EXPECT_NE(c.exit_code, 0) << rt.name;
    EXPECT_NE(c.err.find("hook"), std::string::npos) << rt.name << ": " << c.err;
    if (rt.name == "gantry") {
      EXPECT_NE(c.err.find("prestart hook `/bin/sh`: exit status 3"), std::string::npos) << c.err;
    }
    EXPECT_FALSE(rt.State(id)) << rt.name;
    EXPECT_EQ(rttest::CgroupDirsNamed(id), std::vector<std::string>{}) << rt.name;
    EXPECT_EQ(rttest::MountsMentioning(b.path().string()), std::vector<std::string>{}) << rt.name;
  }
}

TEST_F(RuntimeHooks, RuntimeHookTimeoutFailsCreate) {
  rttest::Bundle b = rttest::MakeBundle({"true"});
  b.config["hooks"] = {
      {"createRuntime", {{{"path", "/bin/sleep"}, {"args", {"sleep", "100"}}, {"timeout", 1}}}}};
  b.Write();
  for (const Runtime& rt : runtimes_) {
    std::string id = rttest::UniqueId("hkt-" + rt.name);
    auto start = std::chrono::steady_clock::now();
    auto c =
        rt.Detached({"create", "--bundle", b.path().string(), id}, dir_.path() / (id + ".log"));
    EXPECT_NE(c.exit_code, 0) << rt.name;
    EXPECT_LT(std::chrono::steady_clock::now() - start, 30s) << rt.name;
    EXPECT_FALSE(rt.State(id)) << rt.name;
    EXPECT_EQ(rttest::CgroupDirsNamed(id), std::vector<std::string>{}) << rt.name;
  }
}

}  // namespace
