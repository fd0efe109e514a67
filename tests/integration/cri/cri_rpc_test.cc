// Every RPC of a running `gantry serve`, through the C++ stub generated from
// our proto, against images pulled from the registry fixture; and the
// store shared with the CLI (a `gantry pull` is listed at once, a CRI
// RemoveImage is gone for `gantry images`, a config over the limits an
// older gantry stored is reported, not parsed).

#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>

#include "integration/cri/cri_helpers.h"
#include "integration/hostile/config_helpers.h"

namespace critest {
namespace {

class CriRpc : public CriTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(CriTest::SetUp());
    ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &reg_));
    fixtures::ImageSpec spec = fixtures::FixtureImageSpec();
    spec.user = "1234:5";
    ASSERT_NO_FATAL_FAILURE(
        pulltest::PushImage(*reg_, gantry_->dir() / "layout", spec, "fixture/app:v1", &image_));
    ASSERT_NO_FATAL_FAILURE(
        pulltest::PushLayout(*reg_, gantry_->dir() / "layout", "push", "fixture/app:v2"));
    ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry_, {}, &srv_));
  }

  std::string Ref(const std::string& tag) const { return reg_->host() + "/fixture/app:" + tag; }

  std::unique_ptr<fixtures::RegistryFixture> reg_;
  fixtures::BuiltImage image_;
  std::unique_ptr<CriServer> srv_;
};

// The peak resident set of the live process `pid` (VmHWM), in bytes; -1
// when it cannot be read.
int64_t PeakRss(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.starts_with("VmHWM:")) return std::stoll(line.substr(6)) << 10;
  return -1;
}

// What `gantry serve` may peak at after reading a 16 MiB config over the
// limits for ListImages and ImageStatus: it holds the bytes, never a tree
// of them (700 MB and more before the limits).
#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kMaxServePeakRss = 512 << 20;
#else
constexpr int64_t kMaxServePeakRss = 128 << 20;
#endif

TEST_F(CriRpc, StoredConfigOverTheLimitsIsReportedNotParsed) {
  std::string ref;
  ASSERT_TRUE(Pull(*srv_, Ref("v1"), &ref).ok()) << srv_->LogText();
  // As an older gantry would have recorded it, beside the honest image.
  const std::string name = Ref("hostile");
  common::Digest d;
  ASSERT_NO_FATAL_FAILURE(hostiletest::RecordWithConfig(
      *gantry_, Ref("v1"), name,
      hostiletest::EmptyEnvConfig(R"({"os":"linux","config":{},"rootfs":{"diff_ids":[]}})"), &d));

  auto images = List(*srv_);
  EXPECT_EQ(images.size(), 2u) << "the image is listed, its user unknown";
  auto status = Status(*srv_, name, /*verbose=*/true);
  ASSERT_TRUE(status.has_image());
  EXPECT_EQ(status.image().id(), d.str());
  ASSERT_TRUE(status.info().contains("config"));
  EXPECT_EQ(nlohmann::json::parse(status.info().at("config")),
            "parse image config: more than 100000 JSON values");
  EXPECT_EQ(nlohmann::json::parse(status.info().at("chainID")), nullptr);

  const int64_t peak = PeakRss(srv_->child().pid());
  ASSERT_GT(peak, 0) << "no VmHWM for the server";
  EXPECT_LT(peak, kMaxServePeakRss) << "peak RSS " << (peak >> 20) << " MiB";
  std::cout << "peak RSS of gantry serve: " << (peak >> 10) << " KiB\n";
}

TEST_F(CriRpc, VersionAndImageFsInfo) {
  runtime::v1::VersionRequest vreq;
  vreq.set_version("v1");
  runtime::v1::VersionResponse vresp;
  auto ctx = Ctx();
  ASSERT_TRUE(srv_->runtime->Version(ctx.get(), vreq, &vresp).ok());
  EXPECT_EQ(vresp.runtime_name(), "gantry");
  EXPECT_EQ(vresp.runtime_api_version(), "v1");
  EXPECT_FALSE(vresp.runtime_version().empty());

  std::string ref;
  ASSERT_TRUE(Pull(*srv_, Ref("v1"), &ref).ok());
  runtime::v1::ImageFsInfoResponse fs;
  auto ctx2 = Ctx();
  ASSERT_TRUE(srv_->images->ImageFsInfo(ctx2.get(), {}, &fs).ok());
  ASSERT_EQ(fs.image_filesystems_size(), 1);
  const auto& ifs = fs.image_filesystems(0);
  EXPECT_GT(ifs.timestamp(), 1'600'000'000'000'000'000);
  EXPECT_EQ(ifs.fs_id().mountpoint(), gantry_->root().string());
  EXPECT_GE(ifs.used_bytes().value(), static_cast<uint64_t>(pulltest::BiggestLayer(image_).size));
  EXPECT_GT(ifs.inodes_used().value(), 3u);
  ASSERT_EQ(fs.container_filesystems_size(), 1);
  EXPECT_EQ(fs.container_filesystems(0).fs_id().mountpoint(), gantry_->root().string());
}

TEST_F(CriRpc, PullListStatusStreamRemove) {
  std::string ref1, ref2;
  ASSERT_TRUE(Pull(*srv_, Ref("v1"), &ref1).ok()) << srv_->LogText();
  ASSERT_TRUE(Pull(*srv_, Ref("v2"), &ref2).ok());
  EXPECT_EQ(ref1, image_.config.digest.str()) << "image_ref is Image.id, the config digest";
  EXPECT_EQ(ref2, ref1) << "two tags of one image";

  auto images = List(*srv_);
  ASSERT_EQ(images.size(), 1u);
  const auto& img = images[0];
  EXPECT_EQ(img.id(), ref1);
  EXPECT_EQ(std::vector<std::string>(img.repo_tags().begin(), img.repo_tags().end()),
            (std::vector<std::string>{Ref("v1"), Ref("v2")}));
  ASSERT_EQ(img.repo_digests_size(), 1);
  EXPECT_EQ(img.repo_digests(0), reg_->host() + "/fixture/app@" + image_.manifest.digest.str());
  int64_t content = image_.manifest.size + image_.config.size;
  for (const auto& l : image_.layers) content += l.size;
  EXPECT_EQ(img.size(), static_cast<uint64_t>(content));
  ASSERT_TRUE(img.has_uid());
  EXPECT_EQ(img.uid().value(), 1234);
  EXPECT_EQ(img.username(), "");
  EXPECT_EQ(img.spec().image(), ref1);
  EXPECT_FALSE(img.pinned());

  // Filter: by tag, by id, by repo digest; and one that matches nothing.
  for (const std::string& f : {Ref("v2"), ref1, img.repo_digests(0)}) {
    runtime::v1::ListImagesRequest req;
    req.mutable_filter()->mutable_image()->set_image(f);
    runtime::v1::ListImagesResponse resp;
    auto ctx = Ctx();
    ASSERT_TRUE(srv_->images->ListImages(ctx.get(), req, &resp).ok()) << f;
    ASSERT_EQ(resp.images_size(), 1) << f;
    EXPECT_EQ(resp.images(0).id(), ref1);
  }
  {
    runtime::v1::ListImagesRequest req;
    req.mutable_filter()->mutable_image()->set_image(reg_->host() + "/fixture/none:v1");
    runtime::v1::ListImagesResponse resp;
    auto ctx = Ctx();
    ASSERT_TRUE(srv_->images->ListImages(ctx.get(), req, &resp).ok());
    EXPECT_EQ(resp.images_size(), 0);
  }

  // StreamImages: each image once, then the end of the stream.
  {
    auto ctx = Ctx();
    auto reader = srv_->images->StreamImages(ctx.get(), {});
    runtime::v1::StreamImagesResponse msg;
    std::vector<std::string> ids;
    while (reader->Read(&msg))
      for (const auto& i : msg.images()) ids.push_back(i.id());
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(ids, std::vector<std::string>{ref1});
  }

  // ImageStatus by tag, id and digest; verbose info as JSON.
  for (const std::string& s : {Ref("v1"), ref1, img.repo_digests(0)}) {
    auto resp = Status(*srv_, s);
    ASSERT_TRUE(resp.has_image()) << s;
    EXPECT_EQ(resp.image().id(), ref1);
    EXPECT_GT(resp.image().size(), 0u);
    EXPECT_TRUE(resp.info().empty()) << "info only when verbose";
  }
  auto verbose = Status(*srv_, Ref("v1"), true);
  ASSERT_TRUE(verbose.has_image());
  for (const char* key : {"config", "chainID", "snapshot"}) {
    ASSERT_TRUE(verbose.info().contains(key)) << key;
    auto j = nlohmann::json::parse(verbose.info().at(key), nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << key << " is not JSON: " << verbose.info().at(key);
  }
  auto config = nlohmann::json::parse(verbose.info().at("config"));
  EXPECT_EQ(config["config"]["User"], "1234:5");
  auto chain = nlohmann::json::parse(verbose.info().at("chainID"));
  ASSERT_TRUE(chain.is_string());
  EXPECT_TRUE(chain.get<std::string>().starts_with("sha256:"));
  auto snap = nlohmann::json::parse(verbose.info().at("snapshot"));
  EXPECT_EQ(snap["key"], chain);
  EXPECT_EQ(snap["unpacked"], true) << "the server unpacks what it pulls";

  // Unknown image: a response without an image, not an error. Empty spec:
  // INVALID_ARGUMENT.
  EXPECT_FALSE(Status(*srv_, Ref("nope")).has_image());
  {
    runtime::v1::ImageStatusRequest req;
    runtime::v1::ImageStatusResponse resp;
    auto ctx = Ctx();
    auto st = srv_->images->ImageStatus(ctx.get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  }

  // RemoveImage by one tag removes every tag; again is fine (idempotent).
  for (int i = 0; i < 2; ++i) {
    runtime::v1::RemoveImageRequest req;
    req.mutable_image()->set_image(Ref("v1"));
    runtime::v1::RemoveImageResponse resp;
    auto ctx = Ctx();
    auto st = srv_->images->RemoveImage(ctx.get(), req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_TRUE(List(*srv_).empty());
  EXPECT_FALSE(Status(*srv_, ref1).has_image());

  // Removing by id removes every tag too.
  ASSERT_TRUE(Pull(*srv_, Ref("v1"), nullptr).ok());
  ASSERT_TRUE(Pull(*srv_, Ref("v2"), nullptr).ok());
  {
    runtime::v1::RemoveImageRequest req;
    req.mutable_image()->set_image(ref1);
    runtime::v1::RemoveImageResponse resp;
    auto ctx = Ctx();
    ASSERT_TRUE(srv_->images->RemoveImage(ctx.get(), req, &resp).ok());
  }
  EXPECT_TRUE(List(*srv_).empty());
}

// --pinned marks images for kubelet's GC to skip; a non-numeric config
// User is reported as username (never together with uid). A second server
// on the same store sees what the first pulled.
TEST_F(CriRpc, PinnedImagesAndUsername) {
  fixtures::ImageSpec spec = fixtures::FixtureImageSpec();
  spec.user = "daemon:daemon";
  spec.labels["named"] = "yes";
  fixtures::BuiltImage named;
  ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(*reg_, gantry_->dir() / "layout-named", spec,
                                              "fixture/named:v1", &named));
  std::string id1, id2;
  ASSERT_TRUE(Pull(*srv_, Ref("v1"), &id1).ok());
  ASSERT_TRUE(Pull(*srv_, reg_->host() + "/fixture/named:v1", &id2).ok());
  std::unique_ptr<CriServer> pinned;
  ASSERT_NO_FATAL_FAILURE(CriServer::Start(*gantry_, {"--pinned", Ref("v1")}, &pinned, "p.sock"));
  auto a = Status(*pinned, id1);
  auto b = Status(*pinned, id2);
  ASSERT_TRUE(a.has_image() && b.has_image());
  EXPECT_TRUE(a.image().pinned());
  EXPECT_FALSE(b.image().pinned());
  EXPECT_FALSE(b.image().has_uid());
  EXPECT_EQ(b.image().username(), "daemon");
  EXPECT_FALSE(Status(*srv_, id1).image().pinned()) << "the first server pins nothing";
}

// RemoveImage frees the image's space in the background, as the CRI
// allows: its blobs and snapshots go, and ImageFsInfo reports less.
TEST_F(CriRpc, RemoveImageFreesItsSpace) {
  std::string id;
  ASSERT_TRUE(Pull(*srv_, Ref("v1"), &id).ok());
  auto used = [&] {
    runtime::v1::ImageFsInfoResponse fs;
    auto ctx = Ctx();
    EXPECT_TRUE(srv_->images->ImageFsInfo(ctx.get(), {}, &fs).ok());
    return fs.image_filesystems(0).used_bytes().value();
  };
  const uint64_t before = used();
  const auto& big = pulltest::BiggestLayer(image_);
  const fs::path blob = gantry_->root() / "content/blobs/sha256" / big.digest.hex();
  ASSERT_TRUE(fs::exists(blob));
  runtime::v1::RemoveImageRequest req;
  req.mutable_image()->set_image(id);
  runtime::v1::RemoveImageResponse resp;
  auto ctx = Ctx();
  ASSERT_TRUE(srv_->images->RemoveImage(ctx.get(), req, &resp).ok());
  EXPECT_TRUE(fixtures::WaitUntil([&] { return !fs::exists(blob); }, std::chrono::seconds(30)))
      << srv_->LogText();
  EXPECT_LT(used(), before);
  EXPECT_TRUE(fixtures::WaitUntil(
      [&] { return srv_->LogText().find("freed removed images") != std::string::npos; },
      std::chrono::seconds(10)));
}

TEST_F(CriRpc, PullErrorsMapToGrpcCodes) {
  std::string ref;
  auto st = Pull(*srv_, Ref("missing"), &ref);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND) << st.error_message();
  EXPECT_NE(st.error_message().find("missing"), std::string::npos) << st.error_message();
  st = Pull(*srv_, "", &ref);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  st = Pull(*srv_, "Not A Reference", &ref);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  {
    runtime::v1::PullImageRequest req;
    req.mutable_image()->set_image(Ref("v1"));
    req.mutable_image()->set_runtime_handler("kata");
    runtime::v1::PullImageResponse resp;
    auto ctx = Ctx();
    st = srv_->images->PullImage(ctx.get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  }
}

TEST_F(CriRpc, CliPullIsListedAndCriRemoveIsGoneForCli) {
  ASSERT_NO_FATAL_FAILURE(pulltest::PullOk(*gantry_, {"--no-unpack", Ref("v1")}));
  auto images = List(*srv_);
  ASSERT_EQ(images.size(), 1u) << "a `gantry pull` is listed by the server at once";
  EXPECT_EQ(images[0].id(), image_.config.digest.str());

  runtime::v1::RemoveImageRequest req;
  req.mutable_image()->set_image(images[0].id());
  runtime::v1::RemoveImageResponse resp;
  auto ctx = Ctx();
  ASSERT_TRUE(srv_->images->RemoveImage(ctx.get(), req, &resp).ok());
  auto names = gantry_->ImageNames();
  EXPECT_TRUE(names.empty()) << "`gantry images` still lists " << names.front();
}

TEST_F(CriRpc, OtherRuntimeMethodsAreUnimplemented) {
  grpc::GenericStub generic(srv_->channel);
  grpc::Slice empty("");  // an empty ListContainersRequest
  grpc::ByteBuffer request(&empty, 1), response;
  auto ctx = Ctx();
  grpc::Status result;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  generic.UnaryCall(ctx.get(), "/runtime.v1.RuntimeService/ListContainers", {}, &request, &response,
                    [&](grpc::Status s) {
                      std::lock_guard<std::mutex> l(mu);
                      result = s;
                      done = true;
                      cv.notify_all();
                    });
  std::unique_lock<std::mutex> l(mu);
  ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(30), [&] { return done; }));
  EXPECT_EQ(result.error_code(), grpc::StatusCode::UNIMPLEMENTED) << result.error_message();
}

}  // namespace
}  // namespace critest

namespace critest {
namespace {

// The same RPCs through an independent client: Python grpcio, stubs
// generated from our proto at test time by grpc_tools.protoc.
TEST_F(CriRpc, EveryRpcWithPythonGrpcio) {
  const std::string python = "/usr/bin/python3";
  ASSERT_TRUE(fixtures::FindExecutable(python))
      << "`" << python << "` is not installed: run scripts/setup.sh";
  auto probe = fixtures::RunCommand({python, "-c", "import grpc, grpc_tools.protoc"});
  ASSERT_TRUE(probe) << probe.error().message;
  ASSERT_EQ(probe->exit_code, 0)
      << "python3-grpcio and python3-grpc-tools are not installed: run scripts/setup.sh\n"
      << probe->err;
  std::vector<std::string> argv = {python,
                                   GANTRY_CRI_PY_CLIENT,
                                   GANTRY_CRI_PROTO_DIR,
                                   (gantry_->dir() / "py").string(),
                                   srv_->socket().string(),
                                   Ref("v1")};
  auto run = fixtures::RunCommand(
      argv,
      {.env = {}, .cwd = gantry_->dir(), .stdin_data = {}, .timeout = std::chrono::seconds(120)});
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_EQ(run->exit_code, 0) << run->Describe(argv) << "\n"
                               << run->out << "\nserver log:\n"
                               << srv_->LogText();
  EXPECT_NE(run->out.find("all checks passed"), std::string::npos) << run->out;
}

}  // namespace
}  // namespace critest
