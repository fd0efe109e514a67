#pragma once
// Which manifest is the image for one platform: the one the source's
// reference names, or, when that is an index (a manifest list), the
// manifest its entry for the platform names. The pull (image::Fetch), the
// copier with one platform (image::CopyImage), the signature policy
// (image::PolicyManifest) and an oci-archive's blob list choose it alike,
// in two steps, so that a caller that needs only the digest does not fetch
// the platform manifest:
//
//   ASSIGN_OR_RETURN(FetchedManifest top, src.ResolveTop(cancel));
//   ASSIGN_OR_RETURN(std::optional<oci::IndexEntry> entry,
//                    registry::SelectPlatformEntry(src, top, oci::HostPlatform()));
//   if (entry) {
//     ASSIGN_OR_RETURN(FetchedManifest m,
//                      registry::FetchPlatformManifest(src, entry->descriptor, cancel));
//   }
//
// Thread-safety: no state of their own; as the source's methods.

#include <atomic>
#include <optional>

#include "common/error.h"
#include "oci/descriptor.h"
#include "oci/manifest.h"
#include "registry/source.h"

namespace registry {

// The entry of the index `top` (what src.ResolveTop answered) for
// `platform` (oci::SelectPlatform's choice), or nullopt when `top` is
// itself an image manifest (oci::ClassifyManifest: kManifest). Nothing is
// fetched; `src` only names the image in errors. Errors: InvalidArgument
// for a schema1 or unknown media type (oci::ClassifyManifest's) or an
// index that does not parse (oci::ParseIndex's); NotFound when the index
// has no entry for `platform` (oci::SelectPlatform's, listing what it
// offers), wrapped with src.Describe().
[[nodiscard]] common::Result<std::optional<oci::IndexEntry>> SelectPlatformEntry(
    const ImageSource& src, const FetchedManifest& top, const oci::Platform& platform);

// The manifest an index entry (`entry`, SelectPlatformEntry's descriptor)
// names, fetched from `src` (which verifies its digest) and checked
// against the entry's size; an answer without a media type gets the
// entry's. Errors: src.GetManifest's as they are (NotFound, Unavailable,
// DataLoss for a wrong digest, Cancelled through `cancel`, which may be
// null); DataLoss "manifest sha256:… has N bytes, the index says M" when
// its size is not the entry's.
[[nodiscard]] common::Result<FetchedManifest> FetchPlatformManifest(
    ImageSource& src, const oci::Descriptor& entry, const std::atomic<bool>* cancel);

}  // namespace registry
