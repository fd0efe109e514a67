// containerd.services.snapshots.v1.Snapshots: containerd's proxy
// snapshotter API over ctrsnap::Door. Each handler converts between proto
// and the door and nothing more; the door holds the logic.

#include "common/log.h"
#include "criimage/rpc_util.h"
#include "criimage/services.h"

namespace criimage {
namespace {

namespace snapv1 = containerd::services::snapshots::v1;

// containerd's proxy sends List results in batches, as its own service does.
constexpr int kListBatch = 100;

std::map<std::string, std::string> Labels(
    const google::protobuf::Map<std::string, std::string>& m) {
  return std::map<std::string, std::string>(m.begin(), m.end());
}

void ToProto(const std::vector<snapshot::MountSpec>& in,
             google::protobuf::RepeatedPtrField<containerd::types::Mount>* out) {
  for (const auto& m : in) {
    auto* pm = out->Add();
    pm->set_type(m.type);
    pm->set_source(m.source);
    for (const auto& o : m.options) pm->add_options(o);
  }
}

void ToProto(int64_t ns, google::protobuf::Timestamp* out) {
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

snapv1::Kind KindToProto(snapshot::SnapshotKind k) {
  switch (k) {
    case snapshot::SnapshotKind::kActive:
      return snapv1::ACTIVE;
    case snapshot::SnapshotKind::kView:
      return snapv1::VIEW;
    case snapshot::SnapshotKind::kCommitted:
      return snapv1::COMMITTED;
  }
  return snapv1::UNKNOWN;
}

void ToProto(const ctrsnap::Info& in, snapv1::Info* out) {
  out->set_name(in.name);
  out->set_parent(in.parent);
  out->set_kind(KindToProto(in.kind));
  ToProto(in.created_ns, out->mutable_created_at());
  ToProto(in.updated_ns, out->mutable_updated_at());
  for (const auto& [k, v] : in.labels) (*out->mutable_labels())[k] = v;
}

// Prepare and View answer AlreadyExists as the remote-snapshot protocol's
// "gantry has this layer": logged at debug, not as a failure.
grpc::Status CreateStatus(RpcLog& log, const common::Error& e) {
  if (e.code == common::Errc::kAlreadyExists) {
    LOG(Debug) << "snapshot exists" << common::Kv("error", e.message);
    return ToGrpc(e);
  }
  return log.Done(ToGrpc(e));
}

}  // namespace

grpc::Status SnapshotsServiceImpl::Prepare(grpc::ServerContext*,
                                           const snapv1::PrepareSnapshotRequest* req,
                                           snapv1::PrepareSnapshotResponse* resp) {
  RpcLog log("Snapshots.Prepare", req->key());
  auto m = door_->Prepare(req->key(), req->parent(), Labels(req->labels()));
  if (!m) return CreateStatus(log, m.error());
  ToProto(*m, resp->mutable_mounts());
  return log.Done(grpc::Status::OK);
}

grpc::Status SnapshotsServiceImpl::View(grpc::ServerContext*,
                                        const snapv1::ViewSnapshotRequest* req,
                                        snapv1::ViewSnapshotResponse* resp) {
  RpcLog log("Snapshots.View", req->key());
  auto m = door_->View(req->key(), req->parent(), Labels(req->labels()));
  if (!m) return CreateStatus(log, m.error());
  ToProto(*m, resp->mutable_mounts());
  return log.Done(grpc::Status::OK);
}

grpc::Status SnapshotsServiceImpl::Mounts(grpc::ServerContext*, const snapv1::MountsRequest* req,
                                          snapv1::MountsResponse* resp) {
  RpcLog log("Snapshots.Mounts", req->key());
  auto m = door_->Mounts(req->key());
  if (!m) return log.Done(ToGrpc(m.error()));
  ToProto(*m, resp->mutable_mounts());
  return log.Done(grpc::Status::OK);
}

grpc::Status SnapshotsServiceImpl::Commit(grpc::ServerContext*,
                                          const snapv1::CommitSnapshotRequest* req,
                                          google::protobuf::Empty*) {
  RpcLog log("Snapshots.Commit", req->key());
  auto st = door_->Commit(req->name(), req->key(), Labels(req->labels()));
  if (!st) return log.Done(ToGrpc(st.error()));
  return log.Done(grpc::Status::OK);
}

grpc::Status SnapshotsServiceImpl::Remove(grpc::ServerContext*,
                                          const snapv1::RemoveSnapshotRequest* req,
                                          google::protobuf::Empty*) {
  RpcLog log("Snapshots.Remove", req->key());
  auto st = door_->Remove(req->key());
  if (!st) return log.Done(ToGrpc(st.error()));
  return log.Done(grpc::Status::OK);
}

grpc::Status SnapshotsServiceImpl::Stat(grpc::ServerContext*,
                                        const snapv1::StatSnapshotRequest* req,
                                        snapv1::StatSnapshotResponse* resp) {
  RpcLog log("Snapshots.Stat", req->key());
  auto info = door_->Stat(req->key());
  if (!info) {
    // containerd's unpacker Stats every chain before it prepares it: a
    // miss is routine.
    if (info.error().code == common::Errc::kNotFound) return ToGrpc(info.error());
    return log.Done(ToGrpc(info.error()));
  }
  ToProto(*info, resp->mutable_info());
  return log.Done(grpc::Status::OK);
}

grpc::Status SnapshotsServiceImpl::Update(grpc::ServerContext*,
                                          const snapv1::UpdateSnapshotRequest* req,
                                          snapv1::UpdateSnapshotResponse* resp) {
  RpcLog log("Snapshots.Update", req->info().name());
  ctrsnap::Info in{.name = req->info().name(), .labels = Labels(req->info().labels())};
  std::vector<std::string> paths(req->update_mask().paths().begin(),
                                 req->update_mask().paths().end());
  auto info = door_->Update(in, paths);
  if (!info) return log.Done(ToGrpc(info.error()));
  ToProto(*info, resp->mutable_info());
  return log.Done(grpc::Status::OK);
}

grpc::Status SnapshotsServiceImpl::List(grpc::ServerContext* ctx,
                                        const snapv1::ListSnapshotsRequest* req,
                                        grpc::ServerWriter<snapv1::ListSnapshotsResponse>* w) {
  RpcLog log("Snapshots.List", "");
  std::vector<std::string> filters(req->filters().begin(), req->filters().end());
  snapv1::ListSnapshotsResponse batch;
  bool broken = false;
  auto flush = [&]() -> common::Status {
    if (batch.info_size() == 0) return {};
    if (ctx->IsCancelled() || !w->Write(batch)) {
      broken = true;
      return common::MakeError(common::Errc::kCancelled, "list snapshots: the client went away");
    }
    batch.Clear();
    return {};
  };
  auto st = door_->List(filters, [&](const ctrsnap::Info& info) -> common::Status {
    ToProto(info, batch.add_info());
    if (batch.info_size() >= kListBatch) return flush();
    return {};
  });
  if (st) st = flush();
  if (!st) {
    if (broken) return log.Done(grpc::Status(grpc::StatusCode::CANCELLED, st.error().message));
    return log.Done(ToGrpc(st.error()));
  }
  return log.Done(grpc::Status::OK);
}

grpc::Status SnapshotsServiceImpl::Usage(grpc::ServerContext*, const snapv1::UsageRequest* req,
                                         snapv1::UsageResponse* resp) {
  RpcLog log("Snapshots.Usage", req->key());
  auto u = door_->Usage(req->key());
  if (!u) return log.Done(ToGrpc(u.error()));
  resp->set_size(u->bytes);
  resp->set_inodes(u->inodes);
  return log.Done(grpc::Status::OK);
}

grpc::Status SnapshotsServiceImpl::Cleanup(grpc::ServerContext*, const snapv1::CleanupRequest*,
                                           google::protobuf::Empty*) {
  RpcLog log("Snapshots.Cleanup", "");
  auto st = door_->Cleanup();
  if (!st) return log.Done(ToGrpc(st.error()));
  return log.Done(grpc::Status::OK);
}

}  // namespace criimage
