#include "criimage/rpc_util.h"

#include "common/log.h"

namespace criimage {

grpc::Status ToGrpc(const common::Error& e) { return grpc::Status(GrpcCode(e.code), e.message); }

grpc::Status RpcLog::Done(grpc::Status s) {
  status_ = s;
  return s;
}

RpcLog::~RpcLog() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - start_)
                      .count();
  if (!status_.ok()) {
    // The handler is the top layer: it logs each error once.
    LOG(Warn) << "rpc failed" << common::Kv("method", method_) << common::Kv("image", subject_)
              << common::Kv("code", static_cast<int>(status_.error_code()))
              << common::Kv("error", status_.error_message())
              << common::Kv("duration_ms", us / 1000.0);
    return;
  }
  LOG(Debug) << "rpc" << common::Kv("method", method_) << common::Kv("image", subject_)
             << common::Kv("code", 0) << common::Kv("duration_ms", us / 1000.0);
}

}  // namespace criimage
