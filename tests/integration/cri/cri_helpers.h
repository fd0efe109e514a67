#pragma once
// A running `gantry serve` (the real binary) on a Unix socket in the test's
// directory, with C++ stubs generated from our proto, for the CRI
// acceptance tests (suites named Cri*).
//
//   std::unique_ptr<CriServer> srv;
//   ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry, {"--min-rate-window", "2"}, &srv));
//   runtime::v1::PullImageResponse resp;
//   grpc::ClientContext ctx;
//   ASSERT_TRUE(srv->images->PullImage(&ctx, req, &resp).ok());

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "criimage/cri_image.grpc.pb.h"
#include "criimage/gantry_progress.grpc.pb.h"
#include "fixtures/process.h"
#include "integration/pull/pull_helpers.h"

namespace critest {

namespace fs = std::filesystem;

class CriServer {
 private:
  // First, so that it is destroyed last: the server is stopped after the
  // channel is gone (gRPC's shutdown waits for open connections to close).
  fixtures::Child child_;

 public:
  // Spawns `gantry serve --listen unix://<dir>/<socket_name> <extra…>` on
  // g's store and waits (20 s at most) until Version answers; fails the
  // test otherwise.
  static void Start(const pulltest::Gantry& g, const std::vector<std::string>& extra,
                    std::unique_ptr<CriServer>* out, const std::string& socket_name = "g.sock");

  const fs::path& socket() const { return socket_; }
  std::string target() const { return "unix:" + socket_.string(); }
  fixtures::Child& child() { return child_; }
  std::string LogText() const;  // the server's stdout+stderr so far

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<runtime::v1::ImageService::Stub> images;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime;
  std::unique_ptr<gantry::v1::PullProgress::Stub> progress;

 private:
  fs::path socket_, log_;
};

// Every Cri* test: its own store and hermetic environment (a Gantry), and
// the registry fixture's peers (docker-registry, skopeo), whose absence
// fails the test.
class CriTest : public ::testing::Test {
 protected:
  void SetUp() override;
  std::unique_ptr<pulltest::Gantry> gantry_;
};

// A context whose deadline is `seconds` from now.
std::unique_ptr<grpc::ClientContext> Ctx(int seconds = 60);

// PullImage of `image` (with `auth` when non-null); returns the status and
// fills `image_ref`.
grpc::Status Pull(CriServer& srv, const std::string& image, std::string* image_ref,
                  const runtime::v1::AuthConfig* auth = nullptr);

// ImageStatus of `image`; fails the test unless the call succeeds.
runtime::v1::ImageStatusResponse Status(CriServer& srv, const std::string& image,
                                        bool verbose = false);

// The ids and repo tags ListImages returns (no filter).
std::vector<runtime::v1::Image> List(CriServer& srv);

}  // namespace critest
