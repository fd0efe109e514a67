// RemoveImage: by id, tag or digest; every tag of the image goes;
// idempotent. Its space is freed in the background (reclaimer.h). With
// publication into containerd (ServeOptions::containerd), containerd's
// records of the image go too: each name, repo digest and the image id,
// as ctrpublish::Publish created them and containerd's CRI plugin removes
// them; containerd's GC then drops what only they held. containerd not
// answering does not fail the removal from gantry (logged at warn; its
// records stay until `ctr images rm` or the next publication updates them).

#include "common/log.h"
#include "criimage/rpc_util.h"
#include "criimage/services.h"

namespace criimage {
namespace {

void RemoveFromContainerd(const ServiceState& s, const CatalogImage& img) {
  std::vector<std::string> names = img.names;
  names.insert(names.end(), img.repo_digests.begin(), img.repo_digests.end());
  names.push_back(img.id);
  for (const std::string& name : img.names) s.publisher->Forget(name);
  if (auto st = ctrpublish::Unpublish(names, *s.containerd); !st)
    LOG(Warn) << "remove image from containerd" << common::Kv("image", img.id)
              << common::Kv("error", st.error().message);
}

}  // namespace

grpc::Status ImageServiceImpl::RemoveImage(grpc::ServerContext*,
                                           const runtime::v1::RemoveImageRequest* req,
                                           runtime::v1::RemoveImageResponse*) {
  RpcLog log("RemoveImage", req->image().image());
  std::optional<CatalogImage> img;
  if (s_->publisher) {
    auto found = s_->catalog->Find(req->image().image());
    if (!found) return log.Done(ToGrpc(found.error()));
    img = std::move(*found);
  }
  if (auto st = s_->catalog->Remove(req->image().image()); !st) return log.Done(ToGrpc(st.error()));
  s_->reclaimer->Request();
  if (img) RemoveFromContainerd(*s_, *img);
  return log.Done(grpc::Status::OK);
}

}  // namespace criimage
