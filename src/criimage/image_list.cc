// ListImages and StreamImages.

#include "criimage/rpc_util.h"
#include "criimage/services.h"

namespace criimage {
namespace {

// The images a filter selects: all of them without a filter image, else
// the one it names (by id, tag or digest), if any.
common::Result<std::vector<CatalogImage>> Select(Catalog& catalog,
                                                 const runtime::v1::ImageFilter* filter) {
  if (filter == nullptr || filter->image().image().empty()) return catalog.List();
  ASSIGN_OR_RETURN(std::optional<CatalogImage> one, catalog.Find(filter->image().image()));
  std::vector<CatalogImage> out;
  if (one) out.push_back(std::move(*one));
  return out;
}

}  // namespace

void ToProto(const CatalogImage& in, runtime::v1::Image* out) {
  out->set_id(in.id);
  for (const auto& t : in.repo_tags) out->add_repo_tags(t);
  for (const auto& d : in.repo_digests) out->add_repo_digests(d);
  out->set_size(in.size);
  if (in.uid)
    out->mutable_uid()->set_value(*in.uid);
  else
    out->set_username(in.username);
  out->mutable_spec()->set_image(in.id);
  out->set_pinned(in.pinned);
}

grpc::Status ImageServiceImpl::ListImages(grpc::ServerContext*,
                                          const runtime::v1::ListImagesRequest* req,
                                          runtime::v1::ListImagesResponse* resp) {
  RpcLog log("ListImages", req->has_filter() ? req->filter().image().image() : "");
  auto images = Select(*s_->catalog, req->has_filter() ? &req->filter() : nullptr);
  if (!images) return log.Done(ToGrpc(images.error()));
  for (const auto& img : *images) ToProto(img, resp->add_images());
  return log.Done(grpc::Status::OK);
}

grpc::Status ImageServiceImpl::StreamImages(
    grpc::ServerContext* ctx, const runtime::v1::StreamImagesRequest* req,
    grpc::ServerWriter<runtime::v1::StreamImagesResponse>* w) {
  RpcLog log("StreamImages", req->has_filter() ? req->filter().image().image() : "");
  auto images = Select(*s_->catalog, req->has_filter() ? &req->filter() : nullptr);
  if (!images) return log.Done(ToGrpc(images.error()));
  // Batches keep each message well under gRPC's 4 MiB default; every image
  // is sent exactly once (from one snapshot of the store), then the stream
  // ends.
  constexpr size_t kBatch = 100;
  for (size_t i = 0; i < images->size(); i += kBatch) {
    if (ctx->IsCancelled()) return log.Done(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
    runtime::v1::StreamImagesResponse msg;
    for (size_t j = i; j < std::min(images->size(), i + kBatch); ++j)
      ToProto((*images)[j], msg.add_images());
    if (!w->Write(msg))
      return log.Done(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
  }
  return log.Done(grpc::Status::OK);
}

}  // namespace criimage
