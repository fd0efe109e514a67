#pragma once
// Error mapping and request logging shared by the RPC handlers. Internal to
// criimage.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>

#include "common/error.h"
#include "criimage/grpc_errc.h"

namespace criimage {

// An error as a status: its kind's code (GrpcCode) and its message.
grpc::Status ToGrpc(const common::Error& e);

// Logs one line per request at debug level when it ends: the method, what
// it was about (an image reference; never credentials), the gRPC code and
// the duration.
class RpcLog {
 public:
  RpcLog(std::string method, std::string subject)
      : method_(std::move(method)),
        subject_(std::move(subject)),
        start_(std::chrono::steady_clock::now()) {}
  ~RpcLog();
  RpcLog(const RpcLog&) = delete;
  RpcLog& operator=(const RpcLog&) = delete;
  // Records and returns `s`, so handlers can `return log.Done(status);`.
  grpc::Status Done(grpc::Status s);

 private:
  std::string method_, subject_;
  std::chrono::steady_clock::time_point start_;
  grpc::Status status_;
};

}  // namespace criimage
