#pragma once
// Shared pieces of the registry door's acceptance tests (suites Mirror*):
// the real `gantry serve --registry-listen 127.0.0.1:0` on a store that
// `gantry pull` filled from the registry fixture, and a raw HTTP/1.1
// client that sends exactly the bytes a test gives it (hostile paths,
// huge headers) and reports exactly what came back.
//
//   MirrorStore s;
//   ASSERT_NO_FATAL_FAILURE(MirrorStore::Create(&s));   // registry, push, pull
//   std::unique_ptr<Door> door;
//   ASSERT_NO_FATAL_FAILURE(Door::Start(*s.gantry, &door));
//   auto r = Http(door->port(), "GET", "/v2/fixture/app/manifests/v1?ns=gantry.test");

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "fixtures/fault_proxy.h"
#include "fixtures/image_builder.h"
#include "fixtures/process.h"
#include "fixtures/registry_fixture.h"
#include "integration/pull/pull_helpers.h"

namespace mirrortest {

namespace fs = std::filesystem;

// The registry host the tests' images are recorded under: a name without
// a port, so that it can also be written as the first component of a
// repository path (skopeo docker://127.0.0.1:PORT/gantry.test/fixture/app).
inline constexpr char kHost[] = "gantry.test";
inline constexpr char kRepo[] = "fixture/app";
inline constexpr char kTag[] = "v1";

struct HttpReply {
  int status = 0;  // 0: the server closed the connection without answering
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;                            // everything after the header block, as received
  std::string Header(const std::string& lower_name) const;
};

// Connects to 127.0.0.1:`port`, sends `request` as it is, reads until the
// server closes the connection (send `Connection: close`), and parses the
// reply. Errors: Unavailable when the connection is refused or the server
// neither answers nor closes within `timeout`.
[[nodiscard]] common::Result<HttpReply> RawHttp(
    uint16_t port, const std::string& request,
    std::chrono::milliseconds timeout = std::chrono::seconds(20));

// "METHOD PATH HTTP/1.1" with Host and Connection: close, then `headers`.
[[nodiscard]] common::Result<HttpReply> Http(
    uint16_t port, const std::string& method, const std::string& path,
    const std::vector<std::pair<std::string, std::string>>& headers = {});

// The "code" of the first error of an OCI error body, or a description of
// why the body is not one.
std::string ErrorCode(const HttpReply& r);

// Writes registry_config()/`host`/hosts.toml so that gantry pulls `host`/…
// from `server_url` ("http://127.0.0.1:PORT").
void PointHostAt(const pulltest::Gantry& g, const std::string& host, const std::string& server_url);

// A store with the fixture image in it: the registry fixture (behind the
// fault proxy, which counts requests) has it as fixture/app:v1, and
// `gantry pull` recorded it as gantry.test/fixture/app:v1 (through a
// hosts.toml pointing gantry.test at the proxy) and as
// 127.0.0.1:REGPORT/fixture/app:v1.
struct MirrorStore {
  std::unique_ptr<pulltest::Gantry> gantry;
  std::unique_ptr<fixtures::RegistryFixture> registry;
  std::unique_ptr<fixtures::FaultProxy> proxy;
  fixtures::BuiltImage image;
  fs::path layout;  // the OCI layout the image was pushed from

  // gantry.test/fixture/app:v1
  static std::string Ref() { return std::string(kHost) + "/" + kRepo + ":" + kTag; }
  // The bytes of one of the image's blobs, from the layout.
  std::string BlobBytes(const common::Digest& d) const;

  static void Create(MirrorStore* out);
};

// A running `gantry serve` with its registry door on 127.0.0.1 and a free
// port (read from the server's log).
class Door {
 private:
  fixtures::Child child_;

 public:
  // `gantry --log-level debug serve --listen unix://DIR/g.sock
  // --registry-listen 127.0.0.1:0 <extra…>`; waits (20 s at most) for the
  // door's address in the log and a 200 from GET /v2/; fails the test
  // otherwise.
  static void Start(const pulltest::Gantry& g, std::unique_ptr<Door>* out,
                    const std::vector<std::string>& extra = {});

  uint16_t port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  fixtures::Child& child() { return child_; }
  std::string LogText() const;

 private:
  fs::path log_;
  uint16_t port_ = 0;
};

// Every digest's file under `blobs_dir` (an OCI layout's blobs/sha256 or
// a store's content/blobs/sha256) exists and hashes to that digest.
void ExpectBlobsVerify(const fs::path& blobs_dir, const std::vector<common::Digest>& digests);

}  // namespace mirrortest
