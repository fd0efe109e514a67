#pragma once
// The HTTP servers of `gantry serve` (the registry door, mirror/, and the
// metrics endpoint, metrics/metrics_server.h): libmicrohttpd on a TCP
// socket we bind ourselves, so that bind errors keep their errno and port
// 0 reports the port the kernel picked. Each server says what it answers;
// this is the part they share: the address, the loopback rule, the
// daemon's start and its graceful stop.
//
//   ASSIGN_OR_RETURN(auto http, httpd::HttpServer::Start(
//       {.listen = "127.0.0.1:0"}, &OnRequest, &my_state));
//   LOG(Info) << "serving" << common::Kv("address", http->address().str());
//   ...
//   http->Shutdown();
//
// Connections are each served on a thread of their own
// (MHD_USE_THREAD_PER_CONNECTION), at most `max_connections` at once;
// SIGPIPE is blocked in those threads, so a client that goes away makes a
// send fail with EPIPE instead of killing the process.
//
// Thread-safety: Start, Shutdown and the destructor from one thread; the
// request callback runs on the server's threads, several at once.

#include <microhttpd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/error.h"

namespace httpd {

// A TCP address to listen on.
struct ListenAddress {
  std::string host;   // "127.0.0.1", "::1" (no brackets), "0.0.0.0"
  uint16_t port = 0;  // 0: the kernel picks a free port
  bool ipv6 = false;
  bool loopback = false;  // 127.0.0.0/8 or ::1

  // "127.0.0.1:5050", "[::1]:5050"
  std::string str() const;
};

// Parses "HOST:PORT": HOST an IPv4 address, "[IPv6]" or "localhost" (taken
// as 127.0.0.1), PORT a decimal in [0, 65535]. Host names are refused: a
// server binds one address, and which one a name means is the resolver's.
// Errors: InvalidArgument naming the text and what is wrong.
[[nodiscard]] common::Result<ListenAddress> ParseListenAddress(std::string_view text);

struct HttpServerOptions {
  std::string listen;  // ParseListenAddress
  // Serve on an address that is not loopback. Without it such an address
  // is refused: none of our HTTP servers authenticates its clients.
  bool allow_remote = false;
  unsigned max_connections = 256;  // each served on a thread of its own
  std::chrono::seconds idle_timeout{60};
  // Request headers (with the URL) over this are refused with a 4xx.
  size_t memory_limit = 32 * 1024;
  // What the server is, for libmicrohttpd's messages in the log
  // ("registry door", "metrics").
  std::string name = "http";
};

class HttpServer {
 public:
  // Binds, listens and starts serving: `handler` (libmicrohttpd's access
  // handler, given `handler_cls`) is called for each request once its
  // headers are in, and must queue a response or return MHD_NO (the
  // connection is then closed).
  // REQUIRES: `handler_cls` outlives the server.
  // Errors: InvalidArgument for a bad address; FailedPrecondition for a
  // non-loopback address without allow_remote; AlreadyExists when the
  // address is in use; PermissionDenied; Internal when libmicrohttpd
  // does not start.
  [[nodiscard]] static common::Result<std::unique_ptr<HttpServer>> Start(
      HttpServerOptions options, MHD_AccessHandlerCallback handler, void* handler_cls);
  ~HttpServer();  // Shutdown()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Stops accepting connections, lets those open finish for up to
  // `grace`, calls `before_stop` (to end responses that would wait
  // longer), then closes what is left and stops. Idempotent.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(2),
                const std::function<void()>& before_stop = {});

  // Whether Shutdown has run.
  bool stopped() const { return daemon_ == nullptr; }

  // The bound address, with the port the kernel picked for port 0.
  const ListenAddress& address() const { return address_; }

 private:
  HttpServer(ListenAddress address, std::string name)
      : address_(std::move(address)), name_(std::move(name)) {}
  ListenAddress address_;
  MHD_Daemon* daemon_ = nullptr;
  std::string name_;
};

// Queues `body` (copied) with `status` and, when not empty, `content_type`
// as the answer on `connection`. For the request callbacks.
MHD_Result QueueBody(MHD_Connection* connection, unsigned status, std::string_view body,
                     const std::string& content_type);

// For the log: `s` with control bytes replaced by '?', cut at 512 bytes.
std::string Printable(std::string_view s);

}  // namespace httpd
