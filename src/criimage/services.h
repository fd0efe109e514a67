#pragma once
// The gRPC service implementations; one file per RPC (image_*.cc,
// runtime_version.cc, progress_watch.cc). Internal to criimage: each
// handler converts between proto and the library and nothing more.

#include <filesystem>
#include <memory>

#include "criimage/catalog.h"
#include "criimage/containerd_snapshots.grpc.pb.h"
#include "criimage/cri_image.grpc.pb.h"
#include "criimage/gantry_progress.grpc.pb.h"
#include "criimage/pull_manager.h"
#include "criimage/reclaimer.h"
#include "ctrpublish/background.h"
#include "ctrpublish/publish.h"
#include "ctrsnap/door.h"

namespace criimage {

// What the handlers share; owned by the Server.
struct ServiceState {
  std::filesystem::path root;
  Catalog* catalog = nullptr;
  PullManager* pulls = nullptr;
  Reclaimer* reclaimer = nullptr;  // frees removed images' space
  // ServeOptions::containerd: null publisher when not publishing.
  ctrpublish::BackgroundPublisher* publisher = nullptr;
  const ctrpublish::ContainerdTarget* containerd = nullptr;
};

// Fills `out` from a catalog image.
void ToProto(const CatalogImage& in, runtime::v1::Image* out);

class ImageServiceImpl final : public runtime::v1::ImageService::Service {
 public:
  explicit ImageServiceImpl(ServiceState* state) : s_(state) {}
  grpc::Status ListImages(grpc::ServerContext* ctx, const runtime::v1::ListImagesRequest* req,
                          runtime::v1::ListImagesResponse* resp) override;
  grpc::Status StreamImages(grpc::ServerContext* ctx, const runtime::v1::StreamImagesRequest* req,
                            grpc::ServerWriter<runtime::v1::StreamImagesResponse>* w) override;
  grpc::Status ImageStatus(grpc::ServerContext* ctx, const runtime::v1::ImageStatusRequest* req,
                           runtime::v1::ImageStatusResponse* resp) override;
  grpc::Status PullImage(grpc::ServerContext* ctx, const runtime::v1::PullImageRequest* req,
                         runtime::v1::PullImageResponse* resp) override;
  grpc::Status RemoveImage(grpc::ServerContext* ctx, const runtime::v1::RemoveImageRequest* req,
                           runtime::v1::RemoveImageResponse* resp) override;
  grpc::Status ImageFsInfo(grpc::ServerContext* ctx, const runtime::v1::ImageFsInfoRequest* req,
                           runtime::v1::ImageFsInfoResponse* resp) override;

 private:
  ServiceState* s_;
};

class RuntimeServiceImpl final : public runtime::v1::RuntimeService::Service {
 public:
  grpc::Status Version(grpc::ServerContext* ctx, const runtime::v1::VersionRequest* req,
                       runtime::v1::VersionResponse* resp) override;
};

class PullProgressImpl final : public gantry::v1::PullProgress::Service {
 public:
  explicit PullProgressImpl(ServiceState* state) : s_(state) {}
  grpc::Status Watch(grpc::ServerContext* ctx, const gantry::v1::WatchRequest* req,
                     grpc::ServerWriter<gantry::v1::PullProgressEvent>* w) override;

 private:
  ServiceState* s_;
};

// containerd's proxy-snapshotter API (snapshots_service.cc) over the door.
class SnapshotsServiceImpl final : public containerd::services::snapshots::v1::Snapshots::Service {
 public:
  explicit SnapshotsServiceImpl(ctrsnap::Door* door) : door_(door) {}
  grpc::Status Prepare(grpc::ServerContext* ctx,
                       const containerd::services::snapshots::v1::PrepareSnapshotRequest* req,
                       containerd::services::snapshots::v1::PrepareSnapshotResponse* resp) override;
  grpc::Status View(grpc::ServerContext* ctx,
                    const containerd::services::snapshots::v1::ViewSnapshotRequest* req,
                    containerd::services::snapshots::v1::ViewSnapshotResponse* resp) override;
  grpc::Status Mounts(grpc::ServerContext* ctx,
                      const containerd::services::snapshots::v1::MountsRequest* req,
                      containerd::services::snapshots::v1::MountsResponse* resp) override;
  grpc::Status Commit(grpc::ServerContext* ctx,
                      const containerd::services::snapshots::v1::CommitSnapshotRequest* req,
                      google::protobuf::Empty* resp) override;
  grpc::Status Remove(grpc::ServerContext* ctx,
                      const containerd::services::snapshots::v1::RemoveSnapshotRequest* req,
                      google::protobuf::Empty* resp) override;
  grpc::Status Stat(grpc::ServerContext* ctx,
                    const containerd::services::snapshots::v1::StatSnapshotRequest* req,
                    containerd::services::snapshots::v1::StatSnapshotResponse* resp) override;
  grpc::Status Update(grpc::ServerContext* ctx,
                      const containerd::services::snapshots::v1::UpdateSnapshotRequest* req,
                      containerd::services::snapshots::v1::UpdateSnapshotResponse* resp) override;
  grpc::Status List(
      grpc::ServerContext* ctx,
      const containerd::services::snapshots::v1::ListSnapshotsRequest* req,
      grpc::ServerWriter<containerd::services::snapshots::v1::ListSnapshotsResponse>* w) override;
  grpc::Status Usage(grpc::ServerContext* ctx,
                     const containerd::services::snapshots::v1::UsageRequest* req,
                     containerd::services::snapshots::v1::UsageResponse* resp) override;
  grpc::Status Cleanup(grpc::ServerContext* ctx,
                       const containerd::services::snapshots::v1::CleanupRequest* req,
                       google::protobuf::Empty* resp) override;

 private:
  ctrsnap::Door* door_;
};

}  // namespace criimage
