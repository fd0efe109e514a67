#pragma once
// A distribution registry as an ImageDestination (registry/destination.h):
// where `gantry push` and `gantry copy … docker://`-style refs write.
//
//   ASSIGN_OR_RETURN(auto dst, registry::OpenRegistryDestination(ref, client_options));
//   ASSIGN_OR_RETURN(image::CopiedImage c, image::CopyImage(*src, *dst, {.cancel = cancel}));
//   registry::DestinationImage out{.top = c.top, .names = {}};
//   TRY(dst->Commit(std::span(&out, 1), cancel));
//
// Over the upload API of RegistryClient (client.h), so with the auth, TLS,
// retry and rate-floor rules of pulls; always against the registry itself
// (mirrors are for pulls only).
//   HasBlob   HEAD; when the blob is not there and `mount_from` is given,
//             a POST with ?mount=&from=: 201 = mounted (true); 202 = not
//             mounted, and the upload session it opened is kept for the
//             PutBlob that follows.
//   PutBlob   an upload session (POST). Its BlobWriter buffers up to the
//             client's upload_chunk_bytes: a blob no larger goes in the
//             final PUT alone (POST + PUT, monolithic); a larger one is
//             PATCHed a chunk at a time as data comes, and the final PUT
//             carries no data. A PATCH that fails (cut, stall, 5xx)
//             re-synchronises offset() with the upload status (GET, its
//             Range header) and Write fails with Unavailable, so that the
//             copier resumes from what the registry holds; a session the
//             registry dropped is replaced by a new one at offset 0.
//   Finish    the final PUT with ?digest=. The writer checks the size;
//             the registry checks the digest (the distribution spec
//             requires it to refuse a mismatch, which comes back as
//             DataLoss): hashing the bytes here too would cost a pass of
//             SHA-256 over every layer for nothing.
//   PutManifest  PUT by digest.
//   Commit    PUT of each image's top manifest under the reference's tag,
//             when it has one (names given to Commit are ignored: a
//             registry reference names one tag).
// ParallelBlobs: true.
//
// Thread-safety: as ImageDestination's contract says.

#include <memory>

#include "common/error.h"
#include "registry/client.h"
#include "registry/destination.h"
#include "registry/reference.h"

namespace registry {

// Errors: RegistryClient::Create's. Nothing is sent before the first call.
[[nodiscard]] common::Result<std::unique_ptr<ImageDestination>> OpenRegistryDestination(
    const ImageRef& ref, ClientOptions options);

}  // namespace registry
