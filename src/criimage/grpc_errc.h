#pragma once
// The one table between gantry's error kinds and gRPC status codes, used
// both ways: by the servers (criimage: an error becomes the code a client
// sees) and by the clients (ctrpublish: containerd's errdefs, which travel
// as gRPC codes, become ours). Header-only: it needs nothing but gRPC's
// StatusCode enum, which both users link through gantry_criproto.

#include <grpcpp/grpcpp.h>

#include <utility>

#include "common/error.h"

namespace criimage {

inline constexpr std::pair<common::Errc, grpc::StatusCode> kErrcGrpc[] = {
    {common::Errc::kNotFound, grpc::StatusCode::NOT_FOUND},
    {common::Errc::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
    {common::Errc::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
    {common::Errc::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION},
    {common::Errc::kUnavailable, grpc::StatusCode::UNAVAILABLE},
    {common::Errc::kDataLoss, grpc::StatusCode::DATA_LOSS},
    {common::Errc::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED},
    {common::Errc::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED},
    {common::Errc::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED},
    {common::Errc::kAborted, grpc::StatusCode::ABORTED},
    {common::Errc::kCancelled, grpc::StatusCode::CANCELLED},
    {common::Errc::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
    {common::Errc::kInternal, grpc::StatusCode::INTERNAL},
};

// Our kind as a gRPC code (1:1; every Errc is in the table).
[[nodiscard]] constexpr grpc::StatusCode GrpcCode(common::Errc code) {
  for (const auto& [errc, status] : kErrcGrpc)
    if (errc == code) return status;
  return grpc::StatusCode::INTERNAL;
}

// A gRPC code as our kind: the table backwards; DEADLINE_EXCEEDED is
// kUnavailable (a peer that did not answer in time), any code not in the
// table (UNKNOWN, OUT_OF_RANGE) kInternal.
[[nodiscard]] constexpr common::Errc ErrcOf(grpc::StatusCode code) {
  if (code == grpc::StatusCode::DEADLINE_EXCEEDED) return common::Errc::kUnavailable;
  for (const auto& [errc, status] : kErrcGrpc)
    if (status == code) return errc;
  return common::Errc::kInternal;
}

static_assert(ErrcOf(GrpcCode(common::Errc::kDataLoss)) == common::Errc::kDataLoss);

}  // namespace criimage
