// PullImage: AuthConfig honoured (username/password, auth, identity_token,
// registry_token), sandbox_config accepted and unused; answers image_ref =
// Image.id (the config digest).

#include "criimage/rpc_util.h"
#include "criimage/services.h"
#include "registry/credentials.h"

namespace criimage {
namespace {

common::Result<std::optional<registry::Credentials>> FromAuthConfig(
    const runtime::v1::AuthConfig& a) {
  registry::Credentials c{.username = a.username(),
                          .password = a.password(),
                          .identity_token = a.identity_token(),
                          .registry_token = a.registry_token()};
  if (!registry::ApplyAuthField(a.auth(), c))
    return common::MakeError(common::Errc::kInvalidArgument,
                             "auth config: `auth` is not base64 of \"user:password\"");
  if (c == registry::Credentials{}) return std::optional<registry::Credentials>{};
  return std::optional<registry::Credentials>(std::move(c));
}

}  // namespace

grpc::Status ImageServiceImpl::PullImage(grpc::ServerContext* ctx,
                                         const runtime::v1::PullImageRequest* req,
                                         runtime::v1::PullImageResponse* resp) {
  // Never log req->auth(): it holds secrets.
  RpcLog log("PullImage", req->image().image());
  const auto& spec = req->image();
  if (spec.image().empty())
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "pull image: empty image"));
  if (!spec.runtime_handler().empty())
    return log.Done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "pull image: unknown runtime handler `" + spec.runtime_handler() +
                                     "` (gantry has only the default)"));
  auto ref = registry::ImageRef::Parse(spec.image());
  if (!ref) return log.Done(ToGrpc(ref.error()));
  std::optional<registry::Credentials> creds;
  if (req->has_auth()) {
    auto c = FromAuthConfig(req->auth());
    if (!c) return log.Done(ToGrpc(c.error()));
    creds = std::move(*c);
  }
  auto r = s_->pulls->Pull(*ref, creds, [ctx] { return ctx->IsCancelled(); });
  if (!r) return log.Done(ToGrpc(r.error()));
  // kubelet's CreateContainer on containerd follows this answer: publish
  // first. A failure is containerd's trouble, not the pull's (the image is
  // recorded): it is retried in the background and shown in `gantry
  // images`, and the pull succeeds.
  if (s_->publisher) (void)s_->publisher->PublishNow(r->name);
  resp->set_image_ref(r->config.digest.str());
  return log.Done(grpc::Status::OK);
}

}  // namespace criimage
