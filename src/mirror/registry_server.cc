// The registry door's HTTP layer: libmicrohttpd on a socket we bind
// ourselves (so that bind errors keep their errno and port 0 reports the
// port it got), the request handed to Handler (distribution_internal.h),
// its answer handed back; blob bodies go out from the open file with
// MHD's fd responses, which use sendfile(2) on plain sockets.

#include "mirror/registry_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <thread>

#include "common/fd.h"
#include "common/log.h"
#include "mirror/distribution_internal.h"

namespace mirror {

using common::Errc;

std::string ListenAddress::str() const {
  std::string h = ipv6 ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

common::Result<ListenAddress> ParseListenAddress(std::string_view text) {
  const std::string shown(text);
  auto fail = [&](const std::string& why) {
    return common::MakeError(Errc::kInvalidArgument, "listen address `" + shown + "`: " + why);
  };
  ListenAddress a;
  std::string_view port;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("no `]` after the IPv6 address");
    a.host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.starts_with(':')) return fail("expected HOST:PORT");
    port = rest.substr(1);
    in6_addr v6{};
    if (::inet_pton(AF_INET6, a.host.c_str(), &v6) != 1) return fail("not an IPv6 address");
    a.ipv6 = true;
    a.loopback = IN6_IS_ADDR_LOOPBACK(&v6);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("expected HOST:PORT");
    std::string_view host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return fail("an IPv6 address goes in brackets ([::1]:PORT)");
    a.host = host == "localhost" ? "127.0.0.1" : std::string(host);
    in_addr v4{};
    if (::inet_pton(AF_INET, a.host.c_str(), &v4) != 1)
      return fail("`" + std::string(host) +
                  "` is not an IP address (host names are not resolved; localhost is 127.0.0.1)");
    a.loopback = (ntohl(v4.s_addr) >> 24) == 127;
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return fail("the port is not a number");
  unsigned long p = std::stoul(std::string(port));
  if (p > 65535) return fail("the port is over 65535");
  a.port = static_cast<uint16_t>(p);
  return a;
}

struct RegistryServer::Impl {
  RegistryServerOptions options;
  ListenAddress address;
  std::unique_ptr<Handler> handler;
  MHD_Daemon* daemon = nullptr;
};

namespace {

// A bound, listening TCP socket; `a.port` becomes the bound port.
common::Result<common::UniqueFd> Listen(ListenAddress& a) {
  // Non-blocking: MHD's worker threads all accept on it, and one that
  // loses the race must not block in accept(2).
  common::UniqueFd fd(
      ::socket(a.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return common::ErrnoError("socket for `" + a.str() + "`");
  int one = 1;
  // A restarted server rebinds its port while old connections linger in TIME_WAIT.
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (a.ipv6) {
    (void)::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(a.port);
    (void)::inet_pton(AF_INET6, a.host.c_str(), &sin6->sin6_addr);
    len = sizeof(sockaddr_in6);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(a.port);
    (void)::inet_pton(AF_INET, a.host.c_str(), &sin->sin_addr);
    len = sizeof(sockaddr_in);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int err = errno;
    if (err == EADDRINUSE)
      return common::MakeError(Errc::kAlreadyExists,
                               "bind `" + a.str() + "`: the address is already in use");
    return common::ErrnoError("bind `" + a.str() + "`", err);
  }
  if (::listen(fd.get(), 128) != 0) return common::ErrnoError("listen on `" + a.str() + "`");
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0)
    return common::ErrnoError("getsockname of `" + a.str() + "`");
  a.port = ntohs(a.ipv6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return fd;
}

// For the log: a request path with control bytes replaced, and cut short.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 512))
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (s.size() > 512) out += "…";
  return out;
}

void OnMhdLog(void* /*cls*/, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string msg(buf);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  LOG(Debug) << "registry door: libmicrohttpd" << common::Kv("message", Printable(msg));
}

MHD_Result CollectAccept(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* value) {
  if (key != nullptr && value != nullptr && ::strcasecmp(key, "Accept") == 0)
    static_cast<std::vector<std::string>*>(cls)->emplace_back(value);
  return MHD_YES;
}

std::optional<std::string> Lookup(MHD_Connection* c, MHD_ValueKind kind, const char* key) {
  const char* v = MHD_lookup_connection_value(c, kind, key);
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

// MHD's content reader for a blob in flight: blocks (on its connection's
// own thread) until the download has more bytes. An error makes MHD close
// the connection mid-body.
ssize_t ReadFollower(void* cls, uint64_t /*pos*/, char* buf, size_t max) {
  auto* f = static_cast<image::PullFlights::Follower*>(cls);
  auto n = f->Read(std::as_writable_bytes(std::span(buf, max)));
  if (!n) {
    LOG(Warn) << "registry door: blob download failed while streaming; connection cut"
              << common::Kv("error", n.error().message);
    return MHD_CONTENT_READER_END_WITH_ERROR;
  }
  if (*n == 0) return MHD_CONTENT_READER_END_OF_STREAM;
  return static_cast<ssize_t>(*n);
}

void FreeFollower(void* cls) { delete static_cast<image::PullFlights::Follower*>(cls); }

MHD_Response* BuildResponse(Response& resp) {
  if (resp.follow) {
    auto* f = new image::PullFlights::Follower(std::move(*resp.follow));
    MHD_Response* r = MHD_create_response_from_callback(static_cast<uint64_t>(resp.length),
                                                        64 * 1024, &ReadFollower, f, &FreeFollower);
    if (r == nullptr) delete f;
    return r;
  }
  if (resp.fd.valid() && resp.length > 0) {
    // MHD owns the descriptor from here and closes it with the response.
    int fd = resp.fd.release();
    MHD_Response* r = MHD_create_response_from_fd_at_offset64(
        static_cast<uint64_t>(resp.length), fd, static_cast<uint64_t>(resp.offset));
    if (r == nullptr) ::close(fd);
    return r;
  }
  return MHD_create_response_from_buffer(resp.body.size(), resp.body.data(), MHD_RESPMEM_MUST_COPY);
}

// Called once per request, when its headers are in: the answer is queued
// at once (a body the client sends, to a method we refuse, is discarded
// and the connection closed by MHD).
MHD_Result OnRequest(void* cls, MHD_Connection* connection, const char* url, const char* method,
                     const char* /*version*/, const char* /*upload_data*/,
                     size_t* /*upload_data_size*/, void** /*con_cls*/) {
  auto* impl = static_cast<RegistryServer::Impl*>(cls);
  Request req;
  req.method = method != nullptr ? method : "";
  req.path = url != nullptr ? url : "";
  req.ns = Lookup(connection, MHD_GET_ARGUMENT_KIND, "ns");
  req.n = Lookup(connection, MHD_GET_ARGUMENT_KIND, "n");
  req.last = Lookup(connection, MHD_GET_ARGUMENT_KIND, "last");
  req.range = Lookup(connection, MHD_HEADER_KIND, "Range");
  (void)MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectAccept, &req.accept);

  Response resp = impl->handler->Serve(req);
  if (!resp.internal_error.empty()) {
    LOG(Warn) << "registry door: request failed" << common::Kv("method", Printable(req.method))
              << common::Kv("path", Printable(req.path)) << common::Kv("status", resp.status)
              << common::Kv("error", resp.internal_error);
  } else {
    LOG(Debug) << "registry door: request" << common::Kv("method", Printable(req.method))
               << common::Kv("path", Printable(req.path))
               << common::Kv("ns", Printable(req.ns.value_or("")))
               << common::Kv("status", resp.status)
               << common::Kv("in_flight", resp.follow ? "yes" : "no");
  }
  MHD_Response* r = BuildResponse(resp);
  if (r == nullptr) return MHD_NO;  // out of memory: MHD closes the connection
  for (const auto& [k, v] : resp.headers) (void)MHD_add_response_header(r, k.c_str(), v.c_str());
  MHD_Result queued = MHD_queue_response(connection, static_cast<unsigned>(resp.status), r);
  MHD_destroy_response(r);
  return queued;
}

}  // namespace

RegistryServer::RegistryServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RegistryServer::~RegistryServer() { Shutdown(); }

const ListenAddress& RegistryServer::address() const { return impl_->address; }

common::Result<std::unique_ptr<RegistryServer>> RegistryServer::Start(
    RegistryServerOptions options) {
  ASSIGN_OR_RETURN(ListenAddress address, ParseListenAddress(options.listen));
  if (!address.loopback && !options.allow_remote)
    return common::MakeError(Errc::kFailedPrecondition,
                             "listen `" + address.str() +
                                 "`: not a loopback address, and serving the store to other "
                                 "machines was not allowed");
  auto impl = std::make_unique<Impl>();
  ASSIGN_OR_RETURN(Handler handler, Handler::Open(options.root, options.pull_through));
  impl->handler = std::make_unique<Handler>(std::move(handler));
  ASSIGN_OR_RETURN(common::UniqueFd listen_fd, Listen(address));
  impl->address = address;
  impl->options = std::move(options);

  // MHD gets its own descriptor for the socket: it closes it (or not) on
  // its failure paths as it sees fit, and ours is closed either way.
  int mhd_fd = ::fcntl(listen_fd.get(), F_DUPFD_CLOEXEC, 3);
  if (mhd_fd < 0) return common::ErrnoError("dup the socket of `" + address.str() + "`");

  // MHD's threads inherit this thread's signal mask. With SIGPIPE blocked
  // in them, sendfile(2) to a client that went away fails with EPIPE and
  // the connection is dropped (MSG_NOSIGNAL exists for send, not for
  // sendfile). Not SIG_IGN for the process: programs gantry-serve runs
  // (credential helpers) would inherit that.
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
  if (address.ipv6) flags |= MHD_USE_IPv6;
  // A thread per connection: a pull-through answer may wait for a
  // download (on a pool thread it would stall every other connection of
  // that thread), and a blob goes out in one sendfile loop instead of one
  // 128 KiB chunk per turn of a shared event loop (bench/containerd.sh:
  // 0.95 x docker-registry with a thread each against 1.12 with a pool of
  // four). The connection limit bounds the threads.
  flags |= MHD_USE_THREAD_PER_CONNECTION;
  impl->daemon = MHD_start_daemon(
      flags, 0, nullptr, nullptr, &OnRequest, impl.get(), MHD_OPTION_EXTERNAL_LOGGER, &OnMhdLog,
      nullptr, MHD_OPTION_LISTEN_SOCKET, mhd_fd, MHD_OPTION_CONNECTION_LIMIT,
      std::max(1u, impl->options.max_connections), MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned>(impl->options.idle_timeout.count()), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      static_cast<size_t>(32 * 1024), MHD_OPTION_END);
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  if (impl->daemon == nullptr)
    return common::MakeError(Errc::kInternal,
                             "start the HTTP server on `" + address.str() + "` (libmicrohttpd)");
  LOG(Info) << "registry door serving" << common::Kv("address", address.str())
            << common::Kv("root", impl->options.root.string());
  return std::unique_ptr<RegistryServer>(new RegistryServer(std::move(impl)));
}

void RegistryServer::Shutdown(std::chrono::milliseconds grace) {
  if (!impl_ || impl_->daemon == nullptr) return;
  // Stop accepting; let open connections finish their responses.
  MHD_socket quiesced = MHD_quiesce_daemon(impl_->daemon);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    const MHD_DaemonInfo* info =
        MHD_get_daemon_info(impl_->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    if (info == nullptr || info->num_connections == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Responses still waiting for a pull end now (their connections are cut).
  if (impl_->options.pull_through != nullptr) impl_->options.pull_through->flights().Shutdown();
  MHD_stop_daemon(impl_->daemon);
  impl_->daemon = nullptr;
  // MHD hands the listening socket back on quiesce; it may be closed only
  // once its threads are gone.
  if (quiesced != MHD_INVALID_SOCKET) ::close(quiesced);
  LOG(Info) << "registry door stopped" << common::Kv("address", impl_->address.str());
}

}  // namespace mirror
