#include "integration/cri/cri_helpers.h"

#include <chrono>

#include "common/fs.h"

namespace critest {

void CriServer::Start(const pulltest::Gantry& g, const std::vector<std::string>& extra,
                      std::unique_ptr<CriServer>* out, const std::string& socket_name) {
  auto srv = std::make_unique<CriServer>();
  srv->socket_ = g.dir() / socket_name;
  srv->log_ = g.dir() / (socket_name + ".log");
  std::vector<std::string> args = {"--log-level", "debug", "serve", "--listen",
                                   "unix://" + srv->socket_.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  auto child = g.Spawn(args, srv->log_, srv->log_);
  ASSERT_TRUE(child) << child.error().message;
  srv->child_ = std::move(*child);
  srv->channel = grpc::CreateChannel(srv->target(), grpc::InsecureChannelCredentials());
  srv->images = runtime::v1::ImageService::NewStub(srv->channel);
  srv->runtime = runtime::v1::RuntimeService::NewStub(srv->channel);
  srv->progress = gantry::v1::PullProgress::NewStub(srv->channel);
  bool up = fixtures::WaitUntil(
      [&] {
        if (srv->child_.Exited()) return true;
        runtime::v1::VersionRequest req;
        runtime::v1::VersionResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
        return srv->runtime->Version(&ctx, req, &resp).ok();
      },
      std::chrono::seconds(20), std::chrono::milliseconds(50));
  ASSERT_TRUE(up) << "gantry serve did not answer in 20 s:\n" << srv->LogText();
  ASSERT_FALSE(srv->child_.Exited()) << "gantry serve exited:\n" << srv->LogText();
  *out = std::move(srv);
}

std::string CriServer::LogText() const {
  auto text = common::ReadFile(log_);
  return text ? *text : text.error().message;
}

void CriTest::SetUp() {
  REQUIRE_TOOLS("docker-registry", "skopeo");
  auto g = pulltest::Gantry::Create();
  ASSERT_TRUE(g) << g.error().message;
  gantry_ = std::make_unique<pulltest::Gantry>(std::move(*g));
}

std::unique_ptr<grpc::ClientContext> Ctx(int seconds) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

grpc::Status Pull(CriServer& srv, const std::string& image, std::string* image_ref,
                  const runtime::v1::AuthConfig* auth) {
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image(image);
  if (auth) *req.mutable_auth() = *auth;
  // kubelet always sends the sandbox config.
  auto* sc = req.mutable_sandbox_config();
  sc->mutable_metadata()->set_name("pod");
  sc->mutable_metadata()->set_namespace_("default");
  sc->mutable_metadata()->set_uid("0e0e");
  sc->mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      runtime::v1::CONTAINER);
  (*sc->mutable_labels())["app"] = "x";
  runtime::v1::PullImageResponse resp;
  auto ctx = Ctx(120);
  grpc::Status st = srv.images->PullImage(ctx.get(), req, &resp);
  if (image_ref) *image_ref = resp.image_ref();
  return st;
}

runtime::v1::ImageStatusResponse Status(CriServer& srv, const std::string& image, bool verbose) {
  runtime::v1::ImageStatusRequest req;
  req.mutable_image()->set_image(image);
  req.set_verbose(verbose);
  runtime::v1::ImageStatusResponse resp;
  auto ctx = Ctx();
  grpc::Status st = srv.images->ImageStatus(ctx.get(), req, &resp);
  EXPECT_TRUE(st.ok()) << "ImageStatus " << image << ": " << st.error_message();
  return resp;
}

std::vector<runtime::v1::Image> List(CriServer& srv) {
  runtime::v1::ListImagesRequest req;
  runtime::v1::ListImagesResponse resp;
  auto ctx = Ctx();
  grpc::Status st = srv.images->ListImages(ctx.get(), req, &resp);
  EXPECT_TRUE(st.ok()) << "ListImages: " << st.error_message();
  return {resp.images().begin(), resp.images().end()};
}

}  // namespace critest
