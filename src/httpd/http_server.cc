#include "httpd/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <thread>

#include "common/fd.h"
#include "common/log.h"

namespace httpd {

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

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 512))
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (s.size() > 512) out += "…";
  return out;
}

MHD_Result QueueBody(MHD_Connection* connection, unsigned status, std::string_view body,
                     const std::string& content_type) {
  MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                                    MHD_RESPMEM_MUST_COPY);
  if (r == nullptr) return MHD_NO;  // out of memory: MHD closes the connection
  if (!content_type.empty())
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type.c_str());
  MHD_Result queued = MHD_queue_response(connection, status, r);
  MHD_destroy_response(r);
  return queued;
}

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

void OnMhdLog(void* cls, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string msg(buf);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  LOG(Debug) << *static_cast<const std::string*>(cls) + ": libmicrohttpd"
             << common::Kv("message", Printable(msg));
}

}  // namespace

common::Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                              MHD_AccessHandlerCallback handler,
                                                              void* handler_cls) {
  ASSIGN_OR_RETURN(ListenAddress address, ParseListenAddress(options.listen));
  if (!address.loopback && !options.allow_remote)
    return common::MakeError(Errc::kFailedPrecondition,
                             "listen `" + address.str() +
                                 "`: not a loopback address, and serving to other machines "
                                 "was not allowed");
  ASSIGN_OR_RETURN(common::UniqueFd listen_fd, Listen(address));
  std::unique_ptr<HttpServer> server(new HttpServer(address, options.name));

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
  // A thread per connection: the registry door's pull-through answer may
  // wait for a download (on a pool thread it would stall every other
  // connection of that thread), and a blob goes out in one sendfile loop
  // instead of one 128 KiB chunk per turn of a shared event loop
  // (bench/containerd.sh: 0.95 x docker-registry with a thread each
  // against 1.12 with a pool of four). The connection limit bounds the
  // threads.
  flags |= MHD_USE_THREAD_PER_CONNECTION;
  server->daemon_ = MHD_start_daemon(
      flags, 0, nullptr, nullptr, handler, handler_cls, MHD_OPTION_EXTERNAL_LOGGER, &OnMhdLog,
      &server->name_, MHD_OPTION_LISTEN_SOCKET, mhd_fd, MHD_OPTION_CONNECTION_LIMIT,
      std::max(1u, options.max_connections), MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned>(options.idle_timeout.count()), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      options.memory_limit, MHD_OPTION_END);
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  if (server->daemon_ == nullptr)
    return common::MakeError(Errc::kInternal,
                             "start the HTTP server on `" + address.str() + "` (libmicrohttpd)");
  return server;
}

HttpServer::~HttpServer() { Shutdown(); }

void HttpServer::Shutdown(std::chrono::milliseconds grace,
                          const std::function<void()>& before_stop) {
  if (daemon_ == nullptr) return;
  // Stop accepting; let open connections finish their responses.
  MHD_socket quiesced = MHD_quiesce_daemon(daemon_);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    if (info == nullptr || info->num_connections == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (before_stop) before_stop();
  MHD_stop_daemon(daemon_);
  daemon_ = nullptr;
  // MHD hands the listening socket back on quiesce; it may be closed only
  // once its threads are gone.
  if (quiesced != MHD_INVALID_SOCKET) ::close(quiesced);
}

}  // namespace httpd
