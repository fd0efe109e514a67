#pragma once
// The metrics endpoint of `gantry serve --metrics-listen`: a Registry's
// current values over HTTP for Prometheus to scrape.
//
//   ASSIGN_OR_RETURN(auto srv, metrics::MetricsServer::Start(registry, {
//       .listen = "127.0.0.1:9321"}));
//   LOG(Info) << "metrics serving" << common::Kv("address", srv->address().str());
//
// What it answers: GET or HEAD /metrics: 200, the text exposition format
// (Content-Type `text/plain; version=0.0.4; charset=utf-8`), computed at
// each request (scrape-time gauges run then); any other path: 404; any
// other method: 405. No authentication: loopback only unless
// `allow_remote` (httpd/http_server.h has the address rules).
//
// Thread-safety: Start, Shutdown and the destructor from one thread;
// scrapes run on the server's threads.

#include <chrono>
#include <memory>
#include <string>

#include "common/error.h"
#include "httpd/http_server.h"
#include "metrics/metrics.h"

namespace metrics {

struct MetricsServerOptions {
  std::string listen = "127.0.0.1:9321";  // httpd::ParseListenAddress
  bool allow_remote = false;              // see httpd::HttpServerOptions
};

class MetricsServer {
 public:
  // Binds and starts serving `registry`. REQUIRES: `registry` outlives the
  // server. Errors: httpd::HttpServer::Start's.
  [[nodiscard]] static common::Result<std::unique_ptr<MetricsServer>> Start(
      const Registry& registry, MetricsServerOptions options);
  ~MetricsServer() = default;  // stops (httpd::HttpServer's destructor)
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Stops accepting, lets scrapes in progress end (up to `grace`), stops.
  // Idempotent.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(2)) {
    http_->Shutdown(grace);
  }
  // The bound address, with the port the kernel picked for port 0.
  const httpd::ListenAddress& address() const { return http_->address(); }

 private:
  explicit MetricsServer(const Registry& registry) : registry_(registry) {}
  static MHD_Result OnRequest(void* cls, MHD_Connection* connection, const char* url,
                              const char* method, const char* version, const char* upload_data,
                              size_t* upload_data_size, void** con_cls);
  const Registry& registry_;
  std::unique_ptr<httpd::HttpServer> http_;
};

}  // namespace metrics
