// RemoveImage: by id, tag or digest; every tag of the image goes;
// idempotent. Its space is freed in the background (reclaimer.h).

#include "criimage/rpc_util.h"
#include "criimage/services.h"

namespace criimage {

grpc::Status ImageServiceImpl::RemoveImage(grpc::ServerContext*,
                                           const runtime::v1::RemoveImageRequest* req,
                                           runtime::v1::RemoveImageResponse*) {
  RpcLog log("RemoveImage", req->image().image());
  if (auto st = s_->catalog->Remove(req->image().image()); !st) return log.Done(ToGrpc(st.error()));
  s_->reclaimer->Request();
  return log.Done(grpc::Status::OK);
}

}  // namespace criimage
