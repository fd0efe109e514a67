// archive/transport.h: the names `gantry copy` takes.

#include "archive/transport.h"

#include <gtest/gtest.h>

namespace {

using archives::ParseTransport;
using archives::Transport;

TEST(TransportTest, ParsesEveryTransport) {
  auto r = ParseTransport("docker://127.0.0.1:5000/app:v1");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->kind, Transport::Kind::kRegistry);
  EXPECT_EQ(r->ref.str(), "127.0.0.1:5000/app:v1");

  // DIR ends at the first ':'; the rest may be a reference.
  r = ParseTransport("oci:/tmp/l:quay.io/org/app:v1");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->kind, Transport::Kind::kOciDir);
  EXPECT_EQ(r->path, "/tmp/l");
  EXPECT_EQ(r->tag, "quay.io/org/app:v1");

  r = ParseTransport("oci-archive:/tmp/x.tar");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Transport::Kind::kOciArchive);
  EXPECT_EQ(r->tag, "");

  r = ParseTransport("docker-archive:-:app:v1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, Transport::Kind::kDockerArchive);
  EXPECT_EQ(r->path, "-");
  EXPECT_EQ(r->tag, "app:v1");

  r = ParseTransport("gantry:3f2a9c1b7d4e");  // an image id prefix is a store name too
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->kind, Transport::Kind::kStore);
  EXPECT_EQ(r->tag, "3f2a9c1b7d4e");
}

TEST(TransportTest, RefusesWhatItCannotName) {
  for (const char* bad : {"containers-storage:app", "docker-daemon:app:v1", "dir:/tmp/x", "/tmp/x",
                          "app:v1", "oci:", "oci:/tmp/x:", "docker://", "docker://A/B"}) {
    auto r = ParseTransport(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, common::Errc::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
  auto r = ParseTransport("containers-storage:app");
  EXPECT_NE(r.error().message.find("containers-storage transport is not supported"),
            std::string::npos)
      << r.error().message;
}

}  // namespace
