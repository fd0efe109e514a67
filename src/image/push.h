#pragma once
// `gantry push` and `gantry tag` as library calls.
//
// PushImage copies an image of the store (image/store_source.h) to a
// registry (registry/registry_destination.h) with the one copy loop
// (image/copy.h), and tags it there when the destination has a tag:
//
//   ASSIGN_OR_RETURN(image::PushResult r, image::PushImage(store, {
//       .name = "127.0.0.1:5000/app:v1", .destination = dest_ref,
//       .client = client_options, .cancel = cancel}));
//   std::cout << dest_ref.str() << ": digest: " << r.top.digest.str() << "\n";
//
// What goes: an image recorded by a platform manifest, that manifest; an
// image recorded by an index, the index whole (same digest) when every
// manifest it lists is in the store (an index copied from a layout or a
// registry with all platforms), else the platform manifest the store holds
// (`platform_only`; the caller says so). Blobs the registry has are not
// sent; when the store name is on the same registry as the destination in
// another repository, blobs are mounted from it (cross-repository mount).
//
// TagImage records `new_name` for the image recorded as `source`, in one
// transaction, as `docker tag` does: the record is the source's (target,
// the labels the image model knows, the unpacked chain), under the new
// name; an existing `new_name` is moved to it.
//
// Errors: NotFound for a name not in the store; the copier's and the
// registry's (Unauthenticated, PermissionDenied, Unavailable …).

#include <atomic>
#include <functional>
#include <string>

#include "common/error.h"
#include "image/copy.h"
#include "image/pull.h"
#include "registry/client.h"
#include "registry/reference.h"
#include "store/metadata.h"

namespace image {

struct PushOptions {
  std::string name;                  // the store record's name (normalised)
  registry::ImageRef destination;    // where it goes (its tag is set in Commit)
  registry::ClientOptions client{};  // auth, TLS, retries
  int max_parallel = 3;
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(const CopyEvent&)> on_event{};
};

struct PushResult {
  oci::Descriptor top;         // the manifest or index pushed (what the tag names)
  bool platform_only = false;  // an index was recorded, its platform manifest went
  CopiedImage copied;
};

[[nodiscard]] common::Result<PushResult> PushImage(const PullStore& store,
                                                   const PushOptions& options);

[[nodiscard]] common::Status TagImage(store::MetadataDb& db, const std::string& source,
                                      const std::string& new_name);

}  // namespace image
