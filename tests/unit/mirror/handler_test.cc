// The registry door's answers from a real store (a temp root written with
// store::ContentStore and store::MetadataDb, as a pull writes it), without
// HTTP: status, headers and the exact bytes the response would send.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/fd.h"
#include "fixtures/image_builder.h"
#include "image/image_record.h"
#include "mirror/distribution_internal.h"
#include "oci/manifest.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace mirror {
namespace {

using common::Digest;

struct Blob {
  std::string data;
  Digest digest;
  std::string media_type;
};

Blob MakeBlob(std::string data, std::string_view media_type) {
  Digest d = Digest::Sha256Of(data);
  return Blob{std::move(data), d, std::string(media_type)};
}

// The body a response would send, read from its file or its string.
std::string BodyOf(const Response& r) {
  if (!r.fd.valid()) return r.body;
  std::string out(static_cast<size_t>(r.length), '\0');
  ssize_t n = ::pread(r.fd.get(), out.data(), out.size(), r.offset);
  EXPECT_EQ(n, static_cast<ssize_t>(out.size()));
  return out;
}

std::string ErrorCode(const Response& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || j["errors"].empty()) return "(not OCI JSON)";
  return j["errors"][0].value("code", "(no code)");
}

Request Get(std::string path, std::optional<std::string> ns = std::nullopt) {
  Request r;
  r.method = "GET";
  r.path = std::move(path);
  r.ns = std::move(ns);
  return r;
}

class MirrorHandler : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = common::TempDir::Create("gantry-mirror");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = std::move(*dir);
    auto cs = store::ContentStore::Open(dir_.path());
    ASSERT_TRUE(cs) << cs.error().message;
    auto db = store::MetadataDb::Open(dir_.path());
    ASSERT_TRUE(db) << db.error().message;

    layer_ = MakeBlob(fixtures::NoiseBytes(10000, 7), oci::media::kOciLayerGzip);
    config_ = MakeBlob(R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}})",
                       oci::media::kOciConfig);
    manifest_ =
        MakeBlob(R"({"schemaVersion":2,"mediaType":")" + std::string(oci::media::kOciManifest) +
                     R"(","config":{"digest":")" + config_.digest.str() +
                     R"("},"layers":[{"digest":")" + layer_.digest.str() + R"("}]})",
                 oci::media::kOciManifest);
    for (const Blob* b : {&layer_, &config_, &manifest_}) {
      ASSERT_TRUE(cs->WriteBlob(b->digest, b->data));
      ASSERT_TRUE(db->PutBlob(b->digest, static_cast<int64_t>(b->data.size()), b->media_type));
    }
    for (const char* name : {"docker.io/library/alpine:3.19", "docker.io/library/alpine:3.20",
                             "127.0.0.1:5000/fixture/app:v1"}) {
      image::Image img;
      img.name = name;
      img.target = oci::Descriptor{.media_type = manifest_.media_type,
                                   .digest = manifest_.digest,
                                   .size = static_cast<int64_t>(manifest_.data.size()),
                                   .annotations = {},
                                   .urls = {},
                                   .artifact_type = {}};
      img.manifest = manifest_.digest;
      img.config = config_.digest;
      img.platform = "linux/amd64";
      ASSERT_TRUE(db->PutImage(image::ToRecord(img)));
    }
    // A record by digest only: not a tag.
    image::Image by_digest;
    by_digest.name = "docker.io/library/alpine@" + manifest_.digest.str();
    by_digest.target = oci::Descriptor{.media_type = manifest_.media_type,
                                       .digest = manifest_.digest,
                                       .size = static_cast<int64_t>(manifest_.data.size()),
                                       .annotations = {},
                                       .urls = {},
                                       .artifact_type = {}};
    ASSERT_TRUE(db->PutImage(image::ToRecord(by_digest)));

    auto h = Handler::Open(dir_.path());
    ASSERT_TRUE(h) << h.error().message;
    handler_ = std::make_unique<Handler>(std::move(*h));
  }

  Response Serve(const Request& r) { return handler_->Serve(r); }

  void ExpectManifest(const Response& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Header("Content-Type"), oci::media::kOciManifest);
    EXPECT_EQ(r.Header("Docker-Content-Digest"), manifest_.digest.str());
    EXPECT_EQ(r.Header(std::string(kApiVersionHeader)), kApiVersion);
    EXPECT_EQ(r.length, static_cast<int64_t>(manifest_.data.size()));
    EXPECT_EQ(BodyOf(r), manifest_.data);
  }

  void ExpectError(const Response& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(ErrorCode(r), code) << r.body;
    EXPECT_EQ(r.Header("Content-Type"), "application/json");
    EXPECT_FALSE(r.fd.valid());
    EXPECT_EQ(r.Header(std::string(kApiVersionHeader)), kApiVersion);
  }

  common::TempDir dir_;
  Blob layer_, config_, manifest_;
  std::unique_ptr<Handler> handler_;
};

TEST_F(MirrorHandler, BaseAnswers200WithTheApiVersion) {
  for (const char* path : {"/v2/", "/v2"}) {
    Response r = Serve(Get(path));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{}");
    EXPECT_EQ(r.Header("docker-distribution-api-version"), "registry/2.0");
  }
}

TEST_F(MirrorHandler, ManifestByTagWithNsAsContainerdAsks) {
  ExpectManifest(Serve(Get("/v2/library/alpine/manifests/3.19", "docker.io")));
  ExpectManifest(Serve(Get("/v2/alpine/manifests/3.20", "docker.io")));
  ExpectManifest(Serve(Get("/v2/fixture/app/manifests/v1", "127.0.0.1:5000")));
}

TEST_F(MirrorHandler, ManifestByTagWithTheHostInTheName) {
  ExpectManifest(Serve(Get("/v2/docker.io/library/alpine/manifests/3.19")));
  ExpectManifest(Serve(Get("/v2/docker.io/alpine/manifests/3.19")));
}

TEST_F(MirrorHandler, NameWithoutRegistryIs404NameUnknown) {
  ExpectError(Serve(Get("/v2/library/alpine/manifests/3.19")), 404, "NAME_UNKNOWN");
  ExpectError(Serve(Get("/v2/library/alpine/tags/list")), 404, "NAME_UNKNOWN");
}

TEST_F(MirrorHandler, UnknownTagOrHostIs404ManifestUnknown) {
  ExpectError(Serve(Get("/v2/library/alpine/manifests/9.99", "docker.io")), 404,
              "MANIFEST_UNKNOWN");
  ExpectError(Serve(Get("/v2/library/alpine/manifests/3.19", "ghcr.io")), 404, "MANIFEST_UNKNOWN");
  ExpectError(Serve(Get("/v2/library/alpine/manifests/3.19", "myregistry")), 404, "NAME_UNKNOWN");
  // A tag outside the grammar cannot be stored: 404, so a client goes on.
  ExpectError(Serve(Get("/v2/library/alpine/manifests/..", "docker.io")), 404, "MANIFEST_UNKNOWN");
}

TEST_F(MirrorHandler, ManifestByDigestWhateverTheName) {
  const std::string path = "/manifests/" + manifest_.digest.str();
  ExpectManifest(Serve(Get("/v2/library/alpine" + path, "docker.io")));
  ExpectManifest(Serve(Get("/v2/some/other/name" + path, "quay.io")));
  ExpectManifest(Serve(Get("/v2/unqualified" + path)));
}

TEST_F(MirrorHandler, ABlobThatIsNotAManifestIsNotServedAsOne) {
  ExpectError(Serve(Get("/v2/library/alpine/manifests/" + config_.digest.str(), "docker.io")), 404,
              "MANIFEST_UNKNOWN");
  ExpectError(
      Serve(Get("/v2/library/alpine/manifests/" + Digest::Sha256Of(std::string("absent")).str(),
                "docker.io")),
      404, "MANIFEST_UNKNOWN");
}

TEST_F(MirrorHandler, AcceptWithoutTheStoredTypeIs404) {
  Request r = Get("/v2/library/alpine/manifests/3.19", "docker.io");
  r.accept = {std::string(oci::media::kDockerManifest) + ", " +
              std::string(oci::media::kDockerManifestList)};
  Response resp = Serve(r);
  ExpectError(resp, 404, "MANIFEST_UNKNOWN");
  EXPECT_NE(resp.body.find("Accept"), std::string::npos) << resp.body;
  r.accept.push_back(std::string(oci::media::kOciManifest));
  ExpectManifest(Serve(r));
  r.accept = {"application/vnd.docker.distribution.manifest.v2+json, */*"};
  ExpectManifest(Serve(r));
}

TEST_F(MirrorHandler, HeadHasTheHeadersOfGet) {
  Request r = Get("/v2/library/alpine/manifests/3.19", "docker.io");
  r.method = "HEAD";
  ExpectManifest(Serve(r));
  r.path = "/v2/library/alpine/blobs/" + layer_.digest.str();
  Response b = Serve(r);
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(b.length, static_cast<int64_t>(layer_.data.size()));
  EXPECT_EQ(b.Header("Docker-Content-Digest"), layer_.digest.str());
}

TEST_F(MirrorHandler, BlobWholeAndByRange) {
  const std::string path = "/v2/library/alpine/blobs/" + layer_.digest.str();
  Response whole = Serve(Get(path, "docker.io"));
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(whole.Header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(whole.Header("Docker-Content-Digest"), layer_.digest.str());
  EXPECT_EQ(whole.Header("Accept-Ranges"), "bytes");
  EXPECT_EQ(BodyOf(whole), layer_.data);

  Request ranged = Get(path, "docker.io");
  ranged.range = "bytes=100-1099";
  Response part = Serve(ranged);
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.Header("Content-Range"), "bytes 100-1099/10000");
  EXPECT_EQ(BodyOf(part), layer_.data.substr(100, 1000));

  ranged.range = "bytes=-10";
  part = Serve(ranged);
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.Header("Content-Range"), "bytes 9990-9999/10000");
  EXPECT_EQ(BodyOf(part), layer_.data.substr(9990));

  ranged.range = "bytes=10000-";
  Response out = Serve(ranged);
  ExpectError(out, 416, "RANGE_INVALID");
  EXPECT_EQ(out.Header("Content-Range"), "bytes */10000");
}

TEST_F(MirrorHandler, BlobsAreServedWhateverTheName) {
  for (const auto& [name, ns] : std::vector<std::pair<std::string, std::optional<std::string>>>{
           {"library/alpine", std::nullopt}, {"x", "quay.io"}, {"a/b/c", "myregistry"}}) {
    Response r = Serve(Get("/v2/" + name + "/blobs/" + config_.digest.str(), ns));
    EXPECT_EQ(r.status, 200) << name;
    EXPECT_EQ(BodyOf(r), config_.data) << name;
  }
}

TEST_F(MirrorHandler, UnknownBlobIs404BlobUnknown) {
  ExpectError(Serve(Get("/v2/library/alpine/blobs/" + Digest::Sha256Of(std::string("absent")).str(),
                        "docker.io")),
              404, "BLOB_UNKNOWN");
}

TEST_F(MirrorHandler, APartialDownloadIsNeverServed) {
  const std::string data = fixtures::NoiseBytes(5000, 9);
  const Digest d = Digest::Sha256Of(data);
  auto cs = store::ContentStore::Open(dir_.path());
  ASSERT_TRUE(cs);
  {
    auto ing = cs->BeginIngest(d, static_cast<int64_t>(data.size()));
    ASSERT_TRUE(ing) << ing.error().message;
    ASSERT_TRUE(ing->Write(std::string_view(data).substr(0, 4000)));
    // Dropped uncommitted: the partial stays in content/ingest/ for resume.
  }
  ASSERT_TRUE(std::filesystem::exists(cs->IngestPath(d)));
  ExpectError(Serve(Get("/v2/library/alpine/blobs/" + d.str(), "docker.io")), 404, "BLOB_UNKNOWN");
}

TEST_F(MirrorHandler, AnOpenBlobOutlivesItsDeletion) {
  Response r = Serve(Get("/v2/library/alpine/blobs/" + layer_.digest.str(), "docker.io"));
  ASSERT_EQ(r.status, 200);
  auto cs = store::ContentStore::Open(dir_.path());
  ASSERT_TRUE(cs);
  ASSERT_TRUE(cs->Delete(layer_.digest));  // what a prune does
  EXPECT_EQ(BodyOf(r), layer_.data);
  ExpectError(Serve(Get("/v2/library/alpine/blobs/" + layer_.digest.str(), "docker.io")), 404,
              "BLOB_UNKNOWN");
}

TEST_F(MirrorHandler, HostileInputGetsA4xxAndTouchesNothingOutsideContent) {
  struct Case {
    std::string path;
    std::optional<std::string> ns;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"/v2/library/alpine/blobs/../../metadata.db", "docker.io", 404, "UNSUPPORTED"},
      {"/v2/library/alpine/blobs/..%2f..%2fmetadata.db", "docker.io", 400, "DIGEST_INVALID"},
      {"/v2/library/alpine/blobs/sha256:../../../metadata.db", "docker.io", 404, "UNSUPPORTED"},
      {"/v2/library/alpine/blobs/sha256:..", "docker.io", 400, "DIGEST_INVALID"},
      {"/v2/library/alpine/blobs/sha256:" + std::string(64, 'A'), "docker.io", 400,
       "DIGEST_INVALID"},
      {"/v2/library/alpine/blobs/md5:00", "docker.io", 400, "DIGEST_INVALID"},
      {"/v2/library/alpine/manifests/sha256:xyz", "docker.io", 400, "DIGEST_INVALID"},
      {"/v2/../etc/manifests/latest", "docker.io", 400, "NAME_INVALID"},
      {"/v2/" + std::string(300, 'a') + "/manifests/latest", "docker.io", 400, "NAME_INVALID"},
      {"/v2/a/manifests/latest", "docker.io/../..", 400, "NAME_INVALID"},
      {"/v2/" + std::string("a\nb") + "/manifests/latest", "docker.io", 400, "NAME_INVALID"},
      {"/v2/library/alpine/manifests/" + std::string(5000, 'x'), "docker.io", 404,
       "MANIFEST_UNKNOWN"},
  };
  for (const auto& c : cases) {
    Response r = Serve(Get(c.path, c.ns));
    EXPECT_EQ(r.status, c.status) << c.path.substr(0, 80) << "\n" << r.body;
    EXPECT_EQ(ErrorCode(r), c.code) << c.path.substr(0, 80);
    EXPECT_FALSE(r.fd.valid()) << c.path.substr(0, 80);
  }
}

TEST_F(MirrorHandler, OtherMethodsAre405Unsupported) {
  for (const char* m : {"PUT", "POST", "DELETE", "PATCH", "OPTIONS", "TRACE", "get", ""}) {
    Request r = Get("/v2/library/alpine/manifests/3.19", "docker.io");
    r.method = m;
    Response resp = Serve(r);
    ExpectError(resp, 405, "UNSUPPORTED");
    EXPECT_EQ(resp.Header("Allow"), "GET, HEAD") << m;
  }
}

TEST_F(MirrorHandler, TagsListTheTagsOfTheRepository) {
  Response r = Serve(Get("/v2/library/alpine/tags/list", "docker.io"));
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["name"], "library/alpine");
  EXPECT_EQ(j["tags"], nlohmann::json::array({"3.19", "3.20"}));

  Request page = Get("/v2/library/alpine/tags/list", "docker.io");
  page.n = "1";
  r = Serve(page);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body)["tags"], nlohmann::json::array({"3.19"}));
  EXPECT_EQ(r.Header("Link"),
            "</v2/library/alpine/tags/list?n=1&last=3.19&ns=docker.io>; rel=\"next\"");
  page.last = "3.19";
  r = Serve(page);
  EXPECT_EQ(nlohmann::json::parse(r.body)["tags"], nlohmann::json::array({"3.20"}));
  EXPECT_EQ(r.Header("Link"), "");

  page.n = "-1";
  ExpectError(Serve(page), 400, "PAGINATION_NUMBER_INVALID");
  ExpectError(Serve(Get("/v2/library/busybox/tags/list", "docker.io")), 404, "NAME_UNKNOWN");
}

}  // namespace
}  // namespace mirror
