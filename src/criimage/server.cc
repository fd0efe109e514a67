#include "criimage/server.h"

#include <fcntl.h>
#include <grp.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/fd.h"
#include "common/fs.h"
#include "common/log.h"
#include "criimage/serve_metrics.h"
#include "criimage/services.h"

namespace criimage {
namespace {

// True when something accepts connections on the Unix socket `path`.
bool SocketAnswers(const std::filesystem::path& path) {
  common::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

common::Status PrepareSocket(const std::filesystem::path& path) {
  if (path.string().size() >= sizeof(sockaddr_un{}.sun_path))
    return common::MakeError(common::Errc::kInvalidArgument,
                             "socket path `" + path.string() + "` is too long");
  TRY(common::MkdirAll(path.parent_path(), 0755));
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return common::ErrnoError("stat `" + path.string() + "`");
  }
  if (!S_ISSOCK(st.st_mode))
    return common::MakeError(common::Errc::kFailedPrecondition,
                             "`" + path.string() + "` exists and is not a socket");
  if (SocketAnswers(path))
    return common::MakeError(common::Errc::kAlreadyExists,
                             "another gantry serve is listening on " + path.string());
  // A socket file nobody listens on: left by a crash.
  LOG(Info) << "replacing stale socket" << common::Kv("path", path.string());
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return common::ErrnoError("remove stale socket `" + path.string() + "`");
  return {};
}

common::Result<gid_t> GroupId(const std::string& group) {
  gid_t gid = 0;
  auto [end, ec] = std::from_chars(group.data(), group.data() + group.size(), gid);
  if (ec == std::errc() && end == group.data() + group.size()) return gid;
  struct group* g = ::getgrnam(group.c_str());
  if (g == nullptr)
    return common::MakeError(common::Errc::kInvalidArgument, "unknown group `" + group + "`");
  return g->gr_gid;
}

}  // namespace

int SystemdListenFd() {
  const char* pid = ::getenv("LISTEN_PID");
  const char* fds = ::getenv("LISTEN_FDS");
  if (pid == nullptr || fds == nullptr || std::atol(pid) != ::getpid() || std::atoi(fds) < 1)
    return -1;
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  constexpr int kFirst = 3;  // SD_LISTEN_FDS_START
  ::fcntl(kFirst, F_SETFD, FD_CLOEXEC);
  return kFirst;
}

common::Result<std::filesystem::path> SocketPath(const std::string& listen) {
  std::string p = listen;
  if (p.starts_with("unix://"))
    p = p.substr(7);
  else if (p.starts_with("unix:"))
    p = p.substr(5);
  else if (p.find("://") != std::string::npos)
    return common::MakeError(common::Errc::kInvalidArgument,
                             "listen `" + listen + "`: only unix:// sockets are served");
  if (p.empty() || p[0] != '/')
    return common::MakeError(common::Errc::kInvalidArgument,
                             "listen `" + listen + "`: the socket path must be absolute");
  return std::filesystem::path(p);
}

struct Server::Impl {
  ServeOptions options;
  std::filesystem::path socket;
  std::unique_ptr<store::ContentStore> content;
  std::unique_ptr<store::MetadataDb> catalog_db;  // the catalog's connection
  std::unique_ptr<store::MetadataDb> pull_db;     // pulls write through this one
  std::unique_ptr<store::MetadataDb> gc_db;       // the reclaimer's
  std::unique_ptr<store::MetadataDb> metrics_db;  // scrapes read through this one
  std::unique_ptr<ServeMetrics> metrics;
  std::unique_ptr<Catalog> catalog;
  // Every snapshotter of the root, the unpack one (--snapshotter) first.
  std::vector<std::unique_ptr<snapshot::Snapshotter>> snapshotters;
  std::unique_ptr<PullManager> pulls;
  std::unique_ptr<Reclaimer> reclaimer;
  // Publication into containerd (ServeOptions::containerd).
  ctrpublish::ContainerdTarget containerd;
  std::unique_ptr<store::MetadataDb> publish_db;
  std::unique_ptr<ctrpublish::BackgroundPublisher> publisher;
  ServiceState state;
  std::unique_ptr<ImageServiceImpl> image_service;
  std::unique_ptr<RuntimeServiceImpl> runtime_service;
  std::unique_ptr<PullProgressImpl> progress_service;
  // The snapshotter door (ServeOptions::snapshotter_listen).
  std::filesystem::path snapshotter_socket;
  std::unique_ptr<store::MetadataDb> door_db;
  std::unique_ptr<ctrsnap::Door> door;
  std::unique_ptr<SnapshotsServiceImpl> snapshots_service;
  std::unique_ptr<grpc::Server> grpc;
  // Socket activation: connections accepted on options.listen_fd are
  // handed to gRPC; `wake` stops the acceptor.
  std::thread acceptor;
  common::UniqueFd wake_read, wake_write;
  bool stopped = false;

  void Accept() {
    for (;;) {
      pollfd fds[2] = {{options.listen_fd, POLLIN, 0}, {wake_read.get(), POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        LOG(Error) << "poll the activation socket" << common::Kv("error", std::strerror(errno));
        return;
      }
      if (fds[1].revents != 0) return;
      // gRPC's endpoints expect non-blocking sockets.
      int conn = ::accept4(options.listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (conn < 0) continue;                            // ECONNABORTED, EAGAIN…: the next one
      grpc::AddInsecureChannelFromFd(grpc.get(), conn);  // gRPC owns it now
    }
  }
};

common::Result<std::unique_ptr<Server>> Server::Start(ServeOptions options) {
  auto impl = std::make_unique<Impl>();
  ASSIGN_OR_RETURN(impl->socket, SocketPath(options.listen));
  if (!options.snapshotter_listen.empty()) {
    ASSIGN_OR_RETURN(impl->snapshotter_socket,
                     common::Wrap(SocketPath(options.snapshotter_listen), "snapshotter socket"));
    if (impl->snapshotter_socket == impl->socket)
      return common::MakeError(common::Errc::kInvalidArgument,
                               "the snapshotter socket `" + impl->socket.string() +
                                   "` is the CRI socket; the Snapshots service is served on a "
                                   "socket of its own");
  }
  std::optional<gid_t> gid;
  if (!options.socket_group.empty()) {
    ASSIGN_OR_RETURN(gid, GroupId(options.socket_group));
  }
  TRY(common::Wrap(common::MkdirAll(options.root, 0700), "open store"));
  ASSIGN_OR_RETURN(store::ContentStore content, store::ContentStore::Open(options.root));
  impl->content = std::make_unique<store::ContentStore>(std::move(content));
  ASSIGN_OR_RETURN(store::MetadataDb cdb, store::MetadataDb::Open(options.root));
  impl->catalog_db = std::make_unique<store::MetadataDb>(std::move(cdb));
  ASSIGN_OR_RETURN(store::MetadataDb pdb, store::MetadataDb::Open(options.root));
  impl->pull_db = std::make_unique<store::MetadataDb>(std::move(pdb));
  ASSIGN_OR_RETURN(store::MetadataDb gdb, store::MetadataDb::Open(options.root));
  impl->gc_db = std::make_unique<store::MetadataDb>(std::move(gdb));
  impl->catalog = std::make_unique<Catalog>(*impl->content, *impl->catalog_db, options.pinned);
  ASSIGN_OR_RETURN(
      impl->snapshotters,
      snapshot::OpenAll(options.root, options.snapshotter == "native" ? snapshot::Kind::kNative
                                                                      : snapshot::Kind::kOverlay));
  std::vector<snapshot::Snapshotter*> all;
  for (const auto& sn : impl->snapshotters) all.push_back(sn.get());
  Reclaimer::OnCollected on_collected;
  if (options.metrics != nullptr) {
    ASSIGN_OR_RETURN(store::MetadataDb mdb, store::MetadataDb::Open(options.root));
    impl->metrics_db = std::make_unique<store::MetadataDb>(std::move(mdb));
    impl->metrics = std::make_unique<ServeMetrics>(
        *options.metrics,
        MetricsSources{
            .db = impl->metrics_db.get(), .content = impl->content.get(), .snapshotters = all});
    on_collected = [m = impl->metrics.get()](const upkeep::GcReport& r) { m->CountGc(r); };
  }
  impl->reclaimer =
      std::make_unique<Reclaimer>(*impl->content, *impl->gc_db, all, std::move(on_collected));
  impl->pulls = std::make_unique<PullManager>(
      *impl->content, *impl->pull_db,
      PullManagerOptions{.root = options.root,
                         .client = options.client,
                         .max_parallel = options.max_parallel_pulls,
                         .max_concurrent_downloads = options.max_concurrent_downloads,
                         .max_layers = options.max_layers,
                         .min_rate_bytes_per_sec = options.min_rate_bytes_per_sec,
                         .min_rate_window = options.min_rate_window,
                         .snapshotter = options.unpack ? all.front() : nullptr,
                         .check_space = options.check_space,
                         .flights = options.flights,
                         .trust = options.trust,
                         .metrics = impl->metrics.get()});
  if (!options.containerd.address.empty()) {
    ASSIGN_OR_RETURN(store::MetadataDb bdb, store::MetadataDb::Open(options.root));
    impl->publish_db = std::make_unique<store::MetadataDb>(std::move(bdb));
    // Set before the first RPC can come (options move into impl later).
    impl->containerd = options.containerd;
    Impl* raw = impl.get();
    impl->publisher = std::make_unique<ctrpublish::BackgroundPublisher>(
        [raw](const std::string& name) -> common::Status {
          const ctrpublish::PublishStore st{.content = raw->content.get(),
                                            .metadata = raw->publish_db.get()};
          auto r = ctrpublish::Publish(st, name, raw->containerd);
          if (!r) return std::unexpected(r.error());
          LOG(Info) << "published to containerd" << common::Kv("image", name)
                    << common::Kv("namespace", raw->containerd.ns)
                    << common::Kv("blobs_written", r->blobs_written)
                    << common::Kv("chains_adopted", r->chains_adopted)
                    << common::Kv("images_created", r->images_created)
                    << common::Kv("images_updated", r->images_updated);
          return {};
        },
        [raw](const std::string& name, const std::string& state) {
          // The record may be gone (removed meanwhile): nothing to label.
          auto st = raw->publish_db->SetImageLabel(name, ctrpublish::kLabelPublished, state);
          if (!st && st.error().code != common::Errc::kNotFound)
            LOG(Warn) << "record publication state" << common::Kv("image", name)
                      << common::Kv("error", st.error().message);
        },
        options.publish_retry);
  }
  impl->state = ServiceState{.root = options.root,
                             .catalog = impl->catalog.get(),
                             .pulls = impl->pulls.get(),
                             .reclaimer = impl->reclaimer.get(),
                             .publisher = impl->publisher.get(),
                             .containerd = &impl->containerd};
  impl->image_service = std::make_unique<ImageServiceImpl>(&impl->state);
  impl->runtime_service = std::make_unique<RuntimeServiceImpl>();
  impl->progress_service = std::make_unique<PullProgressImpl>(&impl->state);
  if (!impl->snapshotter_socket.empty()) {
    ASSIGN_OR_RETURN(store::MetadataDb ddb, store::MetadataDb::Open(options.root));
    impl->door_db = std::make_unique<store::MetadataDb>(std::move(ddb));
    impl->door = std::make_unique<ctrsnap::Door>(options.root, *all.front(), *impl->door_db);
    impl->snapshots_service = std::make_unique<SnapshotsServiceImpl>(impl->door.get());
  }

  const bool activated = options.listen_fd >= 0;
  if (!activated) TRY(PrepareSocket(impl->socket));
  grpc::ServerBuilder builder;
  if (!activated)
    builder.AddListeningPort("unix:" + impl->socket.string(), grpc::InsecureServerCredentials());
  if (impl->metrics) builder.experimental().SetInterceptorCreators(impl->metrics->Interceptors());
  builder.RegisterService(impl->image_service.get());
  builder.RegisterService(impl->runtime_service.get());
  builder.RegisterService(impl->progress_service.get());
  if (impl->snapshots_service) {
    TRY(PrepareSocket(impl->snapshotter_socket));
    builder.AddListeningPort("unix:" + impl->snapshotter_socket.string(),
                             grpc::InsecureServerCredentials());
    builder.RegisterService(impl->snapshots_service.get());
  }
  // The socket must never be reachable with looser permissions than asked:
  // bind under a umask that leaves it owner-only, then widen to the mode.
  const mode_t old_umask = ::umask(0177);
  impl->grpc = builder.BuildAndStart();
  ::umask(old_umask);
  if (!impl->grpc)
    return common::MakeError(common::Errc::kUnavailable,
                             "listen on " + impl->socket.string() + ": gRPC server did not start");
  impl->options = std::move(options);
  if (!impl->snapshotter_socket.empty()) {
    const std::string path = impl->snapshotter_socket.string();
    if (gid && ::chown(path.c_str(), static_cast<uid_t>(-1), *gid) != 0)
      return common::ErrnoError("chown `" + path + "`");
    if (::chmod(path.c_str(), impl->options.socket_mode) != 0)
      return common::ErrnoError("chmod `" + path + "`");
    LOG(Info) << "serving containerd's snapshots API" << common::Kv("socket", path);
  }
  if (activated) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return common::ErrnoError("pipe");
    impl->wake_read = common::UniqueFd(p[0]);
    impl->wake_write = common::UniqueFd(p[1]);
    Impl* raw = impl.get();
    impl->acceptor = std::thread([raw] { raw->Accept(); });
    LOG(Info) << "serving on the socket systemd passed" << common::Kv("fd", raw->options.listen_fd);
    return std::unique_ptr<Server>(new Server(std::move(impl)));
  }
  auto server = std::unique_ptr<Server>(new Server(std::move(impl)));
  if (gid && ::chown(server->impl_->socket.c_str(), static_cast<uid_t>(-1), *gid) != 0)
    return common::ErrnoError("chown `" + server->impl_->socket.string() + "`");
  if (::chmod(server->impl_->socket.c_str(), server->impl_->options.socket_mode) != 0)
    return common::ErrnoError("chmod `" + server->impl_->socket.string() + "`");
  LOG(Info) << "serving" << common::Kv("socket", server->impl_->socket.string())
            << common::Kv("root", server->impl_->options.root.string());
  return server;
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Shutdown(); }

const std::filesystem::path& Server::socket_path() const { return impl_->socket; }

const std::filesystem::path& Server::snapshotter_socket_path() const {
  return impl_->snapshotter_socket;
}

common::Result<oci::Descriptor> Server::Pull(const registry::ImageRef& ref) {
  ASSIGN_OR_RETURN(image::FetchResult r, impl_->pulls->Pull(ref, std::nullopt, {}));
  // The door's client is waiting: publish in the background.
  if (impl_->publisher) impl_->publisher->Enqueue(r.name);
  return r.target;
}

common::Result<image::FetchResult> Server::PullForList(
    const registry::ImageRef& ref, const std::optional<oci::Platform>& platform) {
  return impl_->pulls->Pull(ref, std::nullopt, {}, platform);
}

void Server::Shutdown(std::chrono::milliseconds grace) {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->pulls->CancelAll();
  if (impl_->acceptor.joinable()) {
    char byte = 0;
    if (::write(impl_->wake_write.get(), &byte, 1) < 0) LOG(Warn) << "wake the acceptor failed";
    impl_->acceptor.join();
  }
  impl_->grpc->Shutdown(std::chrono::system_clock::now() + grace);
  impl_->grpc->Wait();
  impl_->reclaimer.reset();  // stops a collection in progress
  impl_->publisher.reset();  // drops retries still due (the images stay "pending")
  // An activation socket belongs to systemd.
  if (impl_->options.listen_fd < 0) ::unlink(impl_->socket.c_str());
  if (!impl_->snapshotter_socket.empty()) ::unlink(impl_->snapshotter_socket.c_str());
  LOG(Info) << "stopped" << common::Kv("socket", impl_->socket.string());
}

}  // namespace criimage
