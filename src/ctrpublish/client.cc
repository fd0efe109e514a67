// PublishPlanned: the plan carried out over containerd's gRPC API.

#include <grpcpp/grpcpp.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "common/log.h"
#include "criimage/containerd_content.grpc.pb.h"
#include "criimage/containerd_images.grpc.pb.h"
#include "criimage/containerd_leases.grpc.pb.h"
#include "criimage/containerd_snapshots.grpc.pb.h"
#include "criimage/grpc_errc.h"
#include "ctrpublish/publish.h"
#include "ctrsnap/names.h"

namespace ctrpublish {
namespace {

namespace content = containerd::services::content::v1;
namespace images = containerd::services::images::v1;
namespace leases = containerd::services::leases::v1;
namespace snapshots = containerd::services::snapshots::v1;
using common::Errc;

// Blobs go in messages of this size (containerd takes up to 16 MiB).
constexpr size_t kWriteChunk = 1 << 20;
// A lease outlives a publisher that dies before deleting it by this much.
constexpr auto kLeaseExpiry = std::chrono::hours(1);

std::unexpected<common::Error> FromGrpc(const grpc::Status& s, const std::string& what) {
  // containerd's errdefs travel as gRPC codes.
  return common::MakeError(criimage::ErrcOf(s.error_code()), what + ": " + s.error_message());
}

std::string GrpcTarget(const std::string& address) {
  if (!address.empty() && address[0] == '/') return "unix://" + address;
  return address;
}

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  time_t secs = std::chrono::system_clock::to_time_t(t);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// A key no other client uses: containerd's unpacker's shape
// ("extract-<unique> <chainID>"), with this process and a counter.
std::string ExtractKey(const common::Digest& chain) {
  static std::atomic<uint64_t> counter{0};
  auto now = std::chrono::system_clock::now().time_since_epoch().count();
  return "extract-gantry-" + std::to_string(::getpid()) + "-" + std::to_string(now) + "-" +
         std::to_string(counter++) + " " + chain.str();
}

class Publisher {
 public:
  explicit Publisher(const ContainerdTarget& target)
      : target_(target),
        channel_(
            grpc::CreateChannel(GrpcTarget(target.address), grpc::InsecureChannelCredentials())),
        content_(content::Content::NewStub(channel_)),
        images_(images::Images::NewStub(channel_)),
        leases_(leases::Leases::NewStub(channel_)),
        snapshots_(snapshots::Snapshots::NewStub(channel_)) {}

  common::Result<PublishResult> Run(const PublishPlan& plan) {
    TRY(CreateLease());
    auto r = Steps(plan);
    // The image record holds everything now (or the next attempt will):
    // the lease goes whatever happened.
    if (!lease_.empty()) {
      auto ctx = Context(false);
      leases::DeleteRequest req;
      req.set_id(lease_);
      google::protobuf::Empty resp;
      grpc::Status s = leases_->Delete(ctx.get(), req, &resp);
      if (!s.ok())
        LOG(Warn) << "delete containerd lease" << common::Kv("lease", lease_)
                  << common::Kv("error", s.error_message());
    }
    return r;
  }

 private:
  std::unique_ptr<grpc::ClientContext> Context(bool leased) const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("containerd-namespace", target_.ns);
    if (leased && !lease_.empty()) ctx->AddMetadata("containerd-lease", lease_);
    ctx->set_deadline(std::chrono::system_clock::now() + target_.timeout);
    return ctx;
  }

  common::Status CreateLease() {
    auto ctx = Context(false);
    leases::CreateRequest req;
    (*req.mutable_labels())["containerd.io/gc.expire"] =
        Rfc3339(std::chrono::system_clock::now() + kLeaseExpiry);
    leases::CreateResponse resp;
    grpc::Status s = leases_->Create(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "create lease");
    lease_ = resp.lease().id();
    return {};
  }

  common::Result<PublishResult> Steps(const PublishPlan& plan) {
    PublishResult r;
    for (const PlannedBlob& b : plan.blobs) {
      ASSIGN_OR_RETURN(bool written, PutBlob(b));
      ++(written ? r.blobs_written : r.blobs_present);
    }
    for (size_t i = 0; i < plan.chains.size(); ++i) {
      ASSIGN_OR_RETURN(bool adopted, Chain(plan.chains[i], i == 0 ? nullptr : &plan.chains[i - 1]));
      ++(adopted ? r.chains_adopted : r.chains_present);
    }
    for (const std::string& name : plan.image_names) {
      ASSIGN_OR_RETURN(bool created, PutImage(name, plan));
      ++(created ? r.images_created : r.images_updated);
    }
    return r;
  }

  // True when written, false when containerd had it (labels updated).
  common::Result<bool> PutBlob(const PlannedBlob& b) {
    const std::string what = "write content " + b.descriptor.digest.str();
    {
      auto ctx = Context(true);
      content::InfoRequest req;
      req.set_digest(b.descriptor.digest.str());
      content::InfoResponse resp;
      grpc::Status s = content_->Info(ctx.get(), req, &resp);
      if (s.ok()) {
        TRY(UpdateBlobLabels(b));
        return false;
      }
      if (s.error_code() != grpc::StatusCode::NOT_FOUND) return FromGrpc(s, what);
    }
    auto ctx = Context(true);
    auto stream = content_->Write(ctx.get());
    const std::string ref = "gantry-publish-" + b.descriptor.digest.str();
    size_t offset = 0;
    do {
      size_t n = std::min(kWriteChunk, b.data.size() - offset);
      content::WriteContentRequest req;
      req.set_ref(ref);
      req.set_total(static_cast<int64_t>(b.data.size()));
      req.set_expected(b.descriptor.digest.str());
      req.set_offset(static_cast<int64_t>(offset));
      req.set_data(b.data.data() + offset, n);
      offset += n;
      const bool last = offset == b.data.size();
      req.set_action(last ? content::COMMIT : content::WRITE);
      if (last)
        for (const auto& [k, v] : b.labels) (*req.mutable_labels())[k] = v;
      content::WriteContentResponse resp;
      if (!stream->Write(req) || !stream->Read(&resp)) break;
      if (last) break;
    } while (true);
    // containerd sends one more message when the stream ends well; Finish
    // waits for the status only once every message has been read.
    stream->WritesDone();
    for (content::WriteContentResponse rest; stream->Read(&rest);) {
    }
    grpc::Status s = stream->Finish();
    if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
      // Another client committed it meanwhile.
      TRY(UpdateBlobLabels(b));
      return false;
    }
    // containerd answers Unavailable ("ref … locked") while another
    // publisher writes the same blob under the same ref: wait for its
    // commit rather than fail.
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE && WaitForBlob(b.descriptor.digest)) {
      TRY(UpdateBlobLabels(b));
      return false;
    }
    if (!s.ok()) return FromGrpc(s, what);
    return true;
  }

  // Polls Info until the blob is committed, within the call timeout.
  bool WaitForBlob(const common::Digest& digest) {
    const auto deadline = std::chrono::steady_clock::now() + target_.timeout;
    auto pause = std::chrono::milliseconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      auto ctx = Context(true);
      content::InfoRequest req;
      req.set_digest(digest.str());
      content::InfoResponse resp;
      grpc::Status s = content_->Info(ctx.get(), req, &resp);
      if (s.ok()) return true;
      if (s.error_code() != grpc::StatusCode::NOT_FOUND) return false;
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(500));
    }
    return false;
  }

  common::Status UpdateBlobLabels(const PlannedBlob& b) {
    if (b.labels.empty()) return {};
    auto ctx = Context(true);
    content::UpdateRequest req;
    req.mutable_info()->set_digest(b.descriptor.digest.str());
    for (const auto& [k, v] : b.labels) {
      (*req.mutable_info()->mutable_labels())[k] = v;
      req.mutable_update_mask()->add_paths("labels." + k);
    }
    content::UpdateResponse resp;
    grpc::Status s = content_->Update(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "label content " + b.descriptor.digest.str());
    return {};
  }

  common::Status StatChain(const common::Digest& chain) {
    auto ctx = Context(true);
    snapshots::StatSnapshotRequest req;
    req.set_snapshotter(target_.snapshotter);
    req.set_key(chain.str());
    snapshots::StatSnapshotResponse resp;
    grpc::Status s = snapshots_->Stat(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "stat snapshot " + chain.str());
    if (resp.info().kind() != snapshots::COMMITTED)
      return common::MakeError(Errc::kFailedPrecondition,
                               "snapshot " + chain.str() + " is not committed in containerd");
    return {};
  }

  // True when containerd recorded the chain now, false when it knew it.
  common::Result<bool> Chain(const common::Digest& chain, const common::Digest* parent) {
    auto known = StatChain(chain);
    if (known) return false;
    if (known.error().code != Errc::kNotFound) return std::unexpected(known.error());

    const std::string key = ExtractKey(chain);
    auto ctx = Context(true);
    snapshots::PrepareSnapshotRequest req;
    req.set_snapshotter(target_.snapshotter);
    req.set_key(key);
    if (parent) req.set_parent(parent->str());
    (*req.mutable_labels())[std::string(ctrsnap::kLabelSnapshotRef)] = chain.str();
    snapshots::PrepareSnapshotResponse resp;
    grpc::Status s = snapshots_->Prepare(ctx.get(), req, &resp);
    if (s.ok()) {
      // The snapshotter made an empty active snapshot instead: it does not
      // have the layer. Take it back.
      auto rctx = Context(true);
      snapshots::RemoveSnapshotRequest rm;
      rm.set_snapshotter(target_.snapshotter);
      rm.set_key(key);
      google::protobuf::Empty empty;
      (void)snapshots_->Remove(rctx.get(), rm, &empty);
      return common::MakeError(Errc::kFailedPrecondition,
                               "snapshotter `" + target_.snapshotter + "` has no chain " +
                                   chain.str() + " (is it gantry's snapshotter door?)");
    }
    if (s.error_code() != grpc::StatusCode::ALREADY_EXISTS)
      return FromGrpc(s, "prepare snapshot " + chain.str());
    TRY(StatChain(chain));
    return true;
  }

  // True when created, false when an existing record was updated.
  common::Result<bool> PutImage(const std::string& name, const PublishPlan& plan) {
    images::Image img;
    img.set_name(name);
    for (const auto& [k, v] : plan.image_labels) (*img.mutable_labels())[k] = v;
    auto* t = img.mutable_target();
    t->set_media_type(plan.target.media_type);
    t->set_digest(plan.target.digest.str());
    t->set_size(plan.target.size);
    for (const auto& [k, v] : plan.target.annotations) (*t->mutable_annotations())[k] = v;
    const std::string what = "image record `" + name + "`";
    {
      auto ctx = Context(true);
      images::CreateImageRequest req;
      *req.mutable_image() = img;
      images::CreateImageResponse resp;
      grpc::Status s = images_->Create(ctx.get(), req, &resp);
      if (s.ok()) return true;
      if (s.error_code() != grpc::StatusCode::ALREADY_EXISTS) return FromGrpc(s, "create " + what);
    }
    auto ctx = Context(true);
    images::UpdateImageRequest req;
    *req.mutable_image() = img;
    req.mutable_update_mask()->add_paths("target");
    for (const auto& [k, v] : plan.image_labels)
      req.mutable_update_mask()->add_paths("labels." + k);
    images::UpdateImageResponse resp;
    grpc::Status s = images_->Update(ctx.get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "update " + what);
    return false;
  }

  const ContainerdTarget& target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<content::Content::Stub> content_;
  std::unique_ptr<images::Images::Stub> images_;
  std::unique_ptr<leases::Leases::Stub> leases_;
  std::unique_ptr<snapshots::Snapshots::Stub> snapshots_;
  std::string lease_;
};

}  // namespace

common::Result<PublishResult> PublishPlanned(const PublishPlan& plan,
                                             const ContainerdTarget& target) {
  Publisher p(target);
  return p.Run(plan);
}

common::Status Unpublish(const std::vector<std::string>& names, const ContainerdTarget& target) {
  auto channel =
      grpc::CreateChannel(GrpcTarget(target.address), grpc::InsecureChannelCredentials());
  auto stub = images::Images::NewStub(channel);
  for (const std::string& name : names) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("containerd-namespace", target.ns);
    ctx.set_deadline(std::chrono::system_clock::now() + target.timeout);
    images::DeleteImageRequest req;
    req.set_name(name);
    google::protobuf::Empty resp;
    grpc::Status s = stub->Delete(&ctx, req, &resp);
    if (!s.ok() && s.error_code() != grpc::StatusCode::NOT_FOUND)
      return FromGrpc(s, "delete image record `" + name + "` from containerd `" + target.address +
                             "` namespace " + target.ns);
  }
  return {};
}

}  // namespace ctrpublish
