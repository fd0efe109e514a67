// gantry.v1.PullProgress/Watch: the progress record of a pull, streamed
// until the pull ends.

#include "criimage/rpc_util.h"
#include "criimage/services.h"
#include "image/pull_progress.h"
#include "registry/reference.h"

namespace criimage {

grpc::Status PullProgressImpl::Watch(grpc::ServerContext* ctx, const gantry::v1::WatchRequest* req,
                                     grpc::ServerWriter<gantry::v1::PullProgressEvent>* w) {
  RpcLog log("Watch", req->image());
  auto ref = registry::ImageRef::Parse(req->image());
  if (!ref) return log.Done(ToGrpc(ref.error()));
  auto st = image::WatchPullProgress(
      s_->root, ref->str(), {.wait = req->wait()}, [ctx] { return ctx->IsCancelled(); },
      [w](const image::PullProgress& p) {
        gantry::v1::PullProgressEvent e;
        e.set_image(p.image);
        e.set_phase(std::string(image::PullPhaseName(p.phase)));
        for (const auto& l : p.layers) {
          auto* out = e.add_layers();
          out->set_digest(l.digest);
          out->set_current(l.current);
          out->set_total(l.total);
          out->set_state(std::string(image::LayerStateName(l.state)));
          out->set_unpacked(l.unpacked);
        }
        e.set_current_bytes(p.current_bytes());
        e.set_total_bytes(p.total_bytes());
        e.set_bytes_per_second(p.bytes_per_second);
        e.set_eta_seconds(p.eta_seconds());
        e.set_error(p.error);
        e.set_pid(p.pid);
        e.set_updated_ns(p.updated_ns);
        return w->Write(e);
      });
  if (!st) return log.Done(ToGrpc(st.error()));
  return log.Done(grpc::Status::OK);
}

}  // namespace criimage
