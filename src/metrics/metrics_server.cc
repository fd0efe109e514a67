#include "metrics/metrics_server.h"

#include <string_view>

namespace metrics {

MHD_Result MetricsServer::OnRequest(void* cls, MHD_Connection* connection, const char* url,
                                    const char* method, const char* /*version*/,
                                    const char* /*upload_data*/, size_t* /*upload_data_size*/,
                                    void** /*con_cls*/) {
  const auto* self = static_cast<const MetricsServer*>(cls);
  const std::string_view m = method != nullptr ? method : "";
  const std::string_view path = url != nullptr ? url : "";
  if (path != "/metrics")
    return httpd::QueueBody(connection, MHD_HTTP_NOT_FOUND, "not found\n", "text/plain");
  if (m != "GET" && m != "HEAD")
    return httpd::QueueBody(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n",
                            "text/plain");
  // MHD sends no body for HEAD but keeps the Content-Length of this one.
  return httpd::QueueBody(connection, MHD_HTTP_OK, self->registry_.Text(), kTextContentType);
}

common::Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const Registry& registry,
                                                                    MetricsServerOptions options) {
  std::unique_ptr<MetricsServer> server(new MetricsServer(registry));
  // Scrapes are short and few: a handful of connections is plenty, and
  // keeps a misbehaving client from holding many threads.
  ASSIGN_OR_RETURN(server->http_,
                   httpd::HttpServer::Start({.listen = options.listen,
                                             .allow_remote = options.allow_remote,
                                             .max_connections = 16,
                                             .idle_timeout = std::chrono::seconds(30),
                                             .name = "metrics"},
                                            &MetricsServer::OnRequest, server.get()));
  return server;
}

}  // namespace metrics
