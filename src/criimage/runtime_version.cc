// RuntimeService.Version, which CRI clients call first.

#include "criimage/rpc_util.h"
#include "criimage/services.h"

#ifndef GANTRY_VERSION
#define GANTRY_VERSION "0.0.0"
#endif

namespace criimage {

grpc::Status RuntimeServiceImpl::Version(grpc::ServerContext*,
                                         const runtime::v1::VersionRequest* req,
                                         runtime::v1::VersionResponse* resp) {
  RpcLog log("Version", req->version());
  resp->set_version("0.1.0");
  resp->set_runtime_name("gantry");
  resp->set_runtime_version(GANTRY_VERSION);
  resp->set_runtime_api_version("v1");
  return log.Done(grpc::Status::OK);
}

}  // namespace criimage
