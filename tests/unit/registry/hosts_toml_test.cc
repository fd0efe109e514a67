// What `gantry containerd-config` prints: the hosts.toml, read back with
// the reader gantry itself uses for containerd's format (registry/hosts.h):
// the mirror first with pull and resolve, the registry as the fallback;
// and the config.toml fragment, read back with Python's tomllib (a TOML
// reader that is not ours).

#include "registry/hosts_toml.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/process.h"
#include "registry/hosts.h"

namespace registry {
namespace {

TEST(HostsToml, UpstreamFollowsTheDefaultsOfResolveHosts) {
  EXPECT_EQ(UpstreamUrl("docker.io").value_or("?"), "https://registry-1.docker.io");
  EXPECT_EQ(UpstreamUrl("index.docker.io").value_or("?"), "https://registry-1.docker.io");
  EXPECT_EQ(UpstreamUrl("ghcr.io").value_or("?"), "https://ghcr.io");
  EXPECT_EQ(UpstreamUrl("127.0.0.1:5000").value_or("?"), "http://127.0.0.1:5000");
  EXPECT_EQ(UpstreamUrl("localhost").value_or("?"), "http://localhost");
  for (const char* bad : {"", "myregistry", "a/b", "x\"y.io", "a b.io"})
    EXPECT_FALSE(UpstreamUrl(bad)) << bad;
}

TEST(HostsToml, ReadsBackAsTheMirrorThenTheRegistry) {
  auto dir = common::TempDir::Create("gantry-hosts-toml");
  ASSERT_TRUE(dir) << dir.error().message;
  auto toml = MirrorHostsToml("docker.io", {"http://127.0.0.1:5050", "https://mirror.example"});
  ASSERT_TRUE(toml) << toml.error().message;
  ASSERT_TRUE(common::MkdirAll(dir->path() / "docker.io", 0755));
  ASSERT_TRUE(common::AtomicWriteFile(dir->path() / "docker.io" / "hosts.toml", *toml, 0644));
  HostsOptions options;
  options.config_dirs = {dir->path()};
  auto hosts = ResolveHosts("docker.io", options);
  ASSERT_TRUE(hosts) << hosts.error().message << "\n" << *toml;
  ASSERT_EQ(hosts->size(), 3u) << *toml;
  EXPECT_EQ((*hosts)[0].base_url(), "http://127.0.0.1:5050/v2");
  EXPECT_TRUE((*hosts)[0].is_mirror);
  EXPECT_TRUE((*hosts)[0].can_pull && (*hosts)[0].can_resolve);
  EXPECT_FALSE((*hosts)[0].can_push);
  EXPECT_EQ((*hosts)[1].base_url(), "https://mirror.example/v2");
  EXPECT_EQ((*hosts)[2].base_url(), "https://registry-1.docker.io/v2");
  EXPECT_FALSE((*hosts)[2].is_mirror);
}

TEST(HostsToml, RefusesWhatWouldBreakTheFile) {
  for (const char* bad : {"127.0.0.1:5050", "ftp://x", "http://", "http://a\"b", "http://a b",
                          "http://u@h", "http://h/?q", "http://h\n[x]"})
    EXPECT_FALSE(MirrorHostsToml("docker.io", {bad})) << bad;
  EXPECT_FALSE(MirrorHostsToml("docker.io", {}));
  EXPECT_FALSE(MirrorHostsToml("not a host", {"http://127.0.0.1:5050"}));
}

TEST(ContainerdConfigToml, IsOneVersion2DocumentWithTheProxySnapshotterAndTheCriSettings) {
  auto dir = common::TempDir::Create("gantry-ctr-toml");
  ASSERT_TRUE(dir) << dir.error().message;
  ContainerdConfigOptions options;
  options.snapshotter_socket = "/run/g s/snap.sock";
  options.certs_dir = "/etc/containerd/certs.d";
  auto toml = ContainerdConfigToml(options);
  ASSERT_TRUE(toml) << toml.error().message;
  ASSERT_TRUE(common::AtomicWriteFile(dir->path() / "config.toml", *toml, 0644));
  auto r = fixtures::RunCommand({"python3", "-c",
                                 "import json, sys, tomllib\n"
                                 "print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))",
                                 (dir->path() / "config.toml").string()},
                                {});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << r->err << "\n" << *toml;
  auto j = nlohmann::json::parse(r->out);
  EXPECT_EQ(j.dump(), nlohmann::json::parse(R"({
    "version": 2,
    "proxy_plugins": {"gantry": {"type": "snapshot", "address": "/run/g s/snap.sock"}},
    "plugins": {"io.containerd.grpc.v1.cri": {
      "containerd": {"snapshotter": "gantry"},
      "registry": {"config_path": "/etc/containerd/certs.d"}}}
  })")
                          .dump())
      << *toml;
}

TEST(ContainerdConfigToml, RefusesPathsThatWouldBreakTheFile) {
  for (const char* bad : {"", "run/s.sock", "/a\"b", "/a\\b", "/a\nb", "/a\tb"}) {
    ContainerdConfigOptions socket;
    socket.snapshotter_socket = bad;
    EXPECT_FALSE(ContainerdConfigToml(socket)) << "socket " << bad;
    ContainerdConfigOptions certs;
    certs.certs_dir = bad;
    EXPECT_FALSE(ContainerdConfigToml(certs)) << "certs dir " << bad;
  }
}

}  // namespace
}  // namespace registry
