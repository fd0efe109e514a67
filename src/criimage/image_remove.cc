// RemoveImage: by id, tag or digest; every tag of the image goes;
// idempotent. Content stays for `gantry prune`.

#include "criimage/rpc_util.h"
#include "criimage/services.h"

namespace criimage {

grpc::Status ImageServiceImpl::RemoveImage(grpc::ServerContext*,
                                           const runtime::v1::RemoveImageRequest* req,
                                           runtime::v1::RemoveImageResponse*) {
  RpcLog log("RemoveImage", req->image().image());
  if (auto st = s_->catalog->Remove(req->image().image()); !st)
    return log.Done(ToGrpc(st.error()));
  return log.Done(grpc::Status::OK);
}

}  // namespace criimage
