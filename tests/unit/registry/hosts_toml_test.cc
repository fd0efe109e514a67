// The hosts.toml `gantry containerd-config` prints, read back with the
// reader gantry itself uses for containerd's format (registry/hosts.h):
// the mirror first with pull and resolve, the registry as the fallback.

#include "registry/hosts_toml.h"

#include <gtest/gtest.h>

#include "common/fd.h"
#include "common/fs.h"
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

}  // namespace
}  // namespace registry
