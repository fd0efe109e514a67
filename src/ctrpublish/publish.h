#pragma once
// Publishing an image of gantry's store into containerd, so that
// containerd and its CRI plugin (kubelet on a containerd node) find it and
// run containers on gantry's layers without fetching one. gantry is the
// containerd client here, over containerd's own gRPC API (our protos in
// src/criimage/proto/containerd_{content,images,leases,snapshots}.proto),
// every call in the target namespace (`containerd-namespace` header; a
// namespace that does not exist is created by containerd on first use).
//
//   ctrpublish::PublishStore st{.content = &content, .metadata = &db};
//   ASSIGN_OR_RETURN(ctrpublish::PublishResult r,
//                    ctrpublish::Publish(st, "docker.io/library/busybox:1.36",
//                                        {.address = "unix:///run/containerd/containerd.sock"}));
//
// What Publish does, in order, under a containerd lease (so that
// containerd's garbage collection takes nothing before the image record
// references it; the lease is deleted at the end, and expires by itself
// after an hour if the process dies first):
//  1. content: writes the image config, the platform manifest and, when
//     the record's target is an index, the index, each verified against
//     its digest and size, with the labels containerd's own pull leaves:
//       index     containerd.io/gc.ref.content.m.0 = the platform manifest
//                 (containerd numbers the manifests its pull kept; gantry
//                 has one)
//       manifest  containerd.io/gc.ref.content.config = the config,
//                 containerd.io/gc.ref.content.l.<i> = each layer blob
//                 (containerd does not hold the layer blobs: the layers
//                 are gantry's snapshots)
//       config    containerd.io/gc.ref.snapshot.<snapshotter> = the top
//                 chainID (what containerd's unpacker sets)
//       all       containerd.io/distribution.source.<registry host> = the
//                 repository path, so that containerd could fetch more
//     A blob containerd has is not written again; its labels are updated.
//     One another publisher is writing (containerd: ref locked) is waited
//     for, up to `timeout`.
//  2. snapshots: for each layer, bottom first, unless containerd already
//     knows the chain (Stat), Prepare("extract-… <chainID>", parent chain,
//     {containerd.io/snapshot.ref: chainID}) through containerd's
//     Snapshots service with `snapshotter`; gantry's snapshotter door
//     answers AlreadyExists for a chain gantry has committed, containerd
//     records the chain in its metadata, and the Stat that follows must
//     find it. No layer is fetched or applied.
//  3. image records, what containerd's CRI plugin creates on a pull, each
//     labelled io.cri-containerd.image=managed: the image's name, its
//     repository@target-digest, and the config digest (the image id kubelet
//     looks up). Create; an existing record of that name is updated
//     (target and label), never duplicated.
// Publishing twice changes nothing the first did not (idempotent).
//
// Errors (each naming the step and object, e.g. "publish `NAME` to
// containerd `ADDR`: write content sha256:…: …"): NotFound when the image
// is not in the store or a blob is missing from it; FailedPrecondition
// when the image is not unpacked in gantry, or when containerd's
// snapshotter `snapshotter` does not have a chain (it is not gantry's
// door, or gantry lacks the layer); Unavailable when containerd does not
// answer (within `timeout` per call); otherwise the code containerd
// answered with, mapped 1:1 (NotFound, AlreadyExists, InvalidArgument, …).
// A publication that fails part way leaves what it wrote for the next
// one, which completes it.
//
// Thread-safety: Publish may run concurrently; each call opens its own
// channel.

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "oci/descriptor.h"
#include "store/content_store.h"
#include "store/metadata.h"

namespace ctrpublish {

// containerd's labels, as its v1.6 code names them.
inline constexpr std::string_view kLabelCriManaged = "io.cri-containerd.image";
inline constexpr std::string_view kCriManaged = "managed";
inline constexpr std::string_view kLabelGcContent = "containerd.io/gc.ref.content.";
inline constexpr std::string_view kLabelGcSnapshot = "containerd.io/gc.ref.snapshot.";
inline constexpr std::string_view kLabelSource = "containerd.io/distribution.source.";

// gantry's own label on a store image record (store::MetadataDb::
// SetImageLabel): the state of its publication into containerd, as
// `gantry images` shows it in PUBLISHED. Values: "yes"; "pending: REASON"
// (a retry is due); "failed: REASON" (given up). No label: never published
// (or re-pulled since).
inline constexpr std::string_view kLabelPublished = "io.gantry.containerd.published";

struct ContainerdTarget {
  // containerd's gRPC socket: "unix:///run/containerd/containerd.sock" or
  // an absolute path.
  std::string address;
  std::string ns = "k8s.io";           // containerd namespace (the CRI plugin's)
  std::string snapshotter = "gantry";  // the proxy plugin name of gantry's door
  std::chrono::seconds timeout{30};    // per call
};

struct PublishStore {
  const store::ContentStore* content = nullptr;
  store::MetadataDb* metadata = nullptr;
};

// A blob to write into containerd's content store, with its labels.
struct PlannedBlob {
  oci::Descriptor descriptor{};
  std::string data{};
  std::map<std::string, std::string> labels{};
};

// What publishing an image amounts to, read from the store. Pure data.
struct PublishPlan {
  std::string name;                                 // gantry's image name
  oci::Descriptor target;                           // the record's target
  std::vector<PlannedBlob> blobs;                   // config, manifest, then index
  std::vector<common::Digest> chains;               // chainIDs, bottom first
  std::vector<std::string> image_names;             // name, repo@digest, config digest; no repeats
  std::map<std::string, std::string> image_labels;  // io.cri-containerd.image=managed
};

// Reads the image record `name` and its blobs and computes the plan for
// `snapshotter` (which names the gc.ref.snapshot label). Errors: NotFound
// (record or blob), DataLoss (a blob that does not parse or match),
// FailedPrecondition when the image is not unpacked.
[[nodiscard]] common::Result<PublishPlan> PlanPublish(const PublishStore& store,
                                                      std::string_view name,
                                                      std::string_view snapshotter);

struct PublishResult {
  int blobs_written = 0;   // new in containerd
  int blobs_present = 0;   // there already (labels updated)
  int chains_adopted = 0;  // recorded by containerd through the door now
  int chains_present = 0;  // containerd knew them already
  int images_created = 0;
  int images_updated = 0;
};

// See the file comment.
[[nodiscard]] common::Result<PublishResult> Publish(const PublishStore& store,
                                                    std::string_view name,
                                                    const ContainerdTarget& target);

// Executes `plan` (steps of the file comment) against containerd.
// Errors: as Publish's, after the plan.
[[nodiscard]] common::Result<PublishResult> PublishPlanned(const PublishPlan& plan,
                                                           const ContainerdTarget& target);

// Deletes containerd's image records `names` (what Publish created: the
// name, repo@digest and config digest, or any other), as containerd's CRI
// plugin does on RemoveImage; containerd's garbage collection may then drop
// the content and snapshots only they held. A name containerd does not
// have is skipped. Errors: Unavailable when containerd does not answer;
// otherwise the code containerd answered with (the first failure ends it).
[[nodiscard]] common::Status Unpublish(const std::vector<std::string>& names,
                                       const ContainerdTarget& target);

}  // namespace ctrpublish
