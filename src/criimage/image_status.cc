// ImageStatus: the image, and with `verbose` its config, chainID and
// snapshot as JSON strings. An unknown image is a response without one.

#include <nlohmann/json.hpp>

#include "criimage/rpc_util.h"
#include "criimage/services.h"
#include "oci/manifest.h"

namespace criimage {
namespace {

std::map<std::string, std::string> VerboseInfo(Catalog& catalog, const CatalogImage& img) {
  std::map<std::string, std::string> info;
  nlohmann::json chain = nullptr;
  auto config = catalog.ConfigJson(img);
  if (config) {
    // Within the config limits (oci/manifest.h); a config past them
    // (stored by an older gantry) shows as why it was refused, not as up
    // to 16 MiB of text in the answer.
    if (auto parsed = oci::ParseImageConfigJson(*config))
      info["config"] = parsed->dump();
    else
      info["config"] = nlohmann::json(parsed.error().message).dump();
    if (auto cfg = oci::ParseImageConfig(*config); cfg && !cfg->diff_ids.empty())
      chain = oci::ChainIds(cfg->diff_ids).back().str();
  }
  info["chainID"] = chain.dump();
  info["snapshot"] = nlohmann::json{{"key", chain}, {"unpacked", !img.chain.empty()}}.dump();
  info["manifest"] = nlohmann::json(img.manifest).dump();
  info["platform"] = nlohmann::json(img.platform).dump();
  return info;
}

}  // namespace

grpc::Status ImageServiceImpl::ImageStatus(grpc::ServerContext*,
                                           const runtime::v1::ImageStatusRequest* req,
                                           runtime::v1::ImageStatusResponse* resp) {
  RpcLog log("ImageStatus", req->image().image());
  auto img = s_->catalog->Find(req->image().image());
  if (!img) return log.Done(ToGrpc(img.error()));
  if (!*img) return log.Done(grpc::Status::OK);
  ToProto(**img, resp->mutable_image());
  if (req->verbose())
    for (auto& [k, v] : VerboseInfo(*s_->catalog, **img)) (*resp->mutable_info())[k] = v;
  return log.Done(grpc::Status::OK);
}

}  // namespace criimage
