#include "criimage/rpc_util.h"

#include "common/log.h"

namespace criimage {

grpc::StatusCode GrpcCode(common::Errc code) {
  using common::Errc;
  switch (code) {
    case Errc::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case Errc::kAlreadyExists:
      return grpc::StatusCode::ALREADY_EXISTS;
    case Errc::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case Errc::kFailedPrecondition:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case Errc::kUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case Errc::kDataLoss:
      return grpc::StatusCode::DATA_LOSS;
    case Errc::kPermissionDenied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case Errc::kUnauthenticated:
      return grpc::StatusCode::UNAUTHENTICATED;
    case Errc::kResourceExhausted:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case Errc::kAborted:
      return grpc::StatusCode::ABORTED;
    case Errc::kCancelled:
      return grpc::StatusCode::CANCELLED;
    case Errc::kUnimplemented:
      return grpc::StatusCode::UNIMPLEMENTED;
    case Errc::kInternal:
      return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

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
