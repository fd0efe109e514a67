// The registry door's HTTP layer: the shared libmicrohttpd server
// (httpd/http_server.h), the request handed to Handler
// (distribution_internal.h), its answer handed back; blob bodies go out from the open file with
// MHD's fd responses, which use sendfile(2) on plain sockets.

#include "mirror/registry_server.h"

#include <microhttpd.h>
#include <strings.h>
#include <unistd.h>

#include "common/log.h"
#include "mirror/distribution_internal.h"

namespace mirror {

struct RegistryServer::Impl {
  RegistryServerOptions options;
  std::unique_ptr<Handler> handler;
  std::unique_ptr<httpd::HttpServer> http;
  metrics::Family<metrics::Counter>* requests = nullptr;  // options.metrics's, or null
};

namespace {

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

bool ClientAllowed(MHD_Connection* connection, const fleet::AllowList& allow) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  return info != nullptr && allow.Allows(info->client_addr);
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
  req.blob_size = Lookup(connection, MHD_HEADER_KIND, registry::kPeerBlobSizeHeader);
  req.stored_only = Lookup(connection, MHD_HEADER_KIND, registry::kPeerStoredOnlyHeader) == "1";
  (void)MHD_get_connection_values(connection, MHD_HEADER_KIND, &CollectAccept, &req.accept);

  Response resp;
  if (impl->options.allow && !ClientAllowed(connection, *impl->options.allow)) {
    resp.status = 403;
    resp.headers = {{"Content-Type", "application/json"},
                    {std::string(kApiVersionHeader), std::string(kApiVersion)}};
    resp.body = ErrorBody({403, "DENIED", "this address is not in the door's --peers-allow list"});
  } else {
    resp = impl->handler->Serve(req);
  }
  if (!resp.internal_error.empty()) {
    LOG(Warn) << "registry door: request failed"
              << common::Kv("method", httpd::Printable(req.method))
              << common::Kv("path", httpd::Printable(req.path)) << common::Kv("status", resp.status)
              << common::Kv("error", resp.internal_error);
  } else {
    LOG(Debug) << "registry door: request" << common::Kv("method", httpd::Printable(req.method))
               << common::Kv("path", httpd::Printable(req.path))
               << common::Kv("ns", httpd::Printable(req.ns.value_or("")))
               << common::Kv("status", resp.status)
               << common::Kv("in_flight", resp.follow ? "yes" : "no");
  }
  if (impl->requests != nullptr) {
    // The method as a client sent it would make a series per invented verb.
    std::string_view m = "other";
    if (req.method == "GET" || req.method == "HEAD") m = req.method;
    impl->requests->With({m, std::to_string(resp.status)}).Inc();
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

const ListenAddress& RegistryServer::address() const { return impl_->http->address(); }

common::Result<std::unique_ptr<RegistryServer>> RegistryServer::Start(
    RegistryServerOptions options) {
  auto impl = std::make_unique<Impl>();
  ASSIGN_OR_RETURN(Handler handler,
                   Handler::Open(options.root, options.pull_through, options.blob_through));
  impl->handler = std::make_unique<Handler>(std::move(handler));
  impl->options = std::move(options);
  if (impl->options.metrics != nullptr)
    impl->requests = &impl->options.metrics->AddCounter(
        "gantry_registry_door_requests_total",
        "Requests the registry door answered, by method (GET, HEAD, other) and HTTP status code.",
        {"method", "code"});
  ASSIGN_OR_RETURN(impl->http,
                   httpd::HttpServer::Start({.listen = impl->options.listen,
                                             .allow_remote = impl->options.allow_remote,
                                             .max_connections = impl->options.max_connections,
                                             .idle_timeout = impl->options.idle_timeout,
                                             .name = "registry door"},
                                            &OnRequest, impl.get()));
  LOG(Info) << "registry door serving" << common::Kv("address", impl->http->address().str())
            << common::Kv("root", impl->options.root.string());
  return std::unique_ptr<RegistryServer>(new RegistryServer(std::move(impl)));
}

void RegistryServer::Shutdown(std::chrono::milliseconds grace) {
  if (!impl_ || impl_->http->stopped()) return;
  // Responses still waiting for a pull end once the grace is over (their
  // connections are cut).
  image::PullThrough* through = impl_->options.pull_through;
  image::BlobThrough* blobs = impl_->options.blob_through;
  impl_->http->Shutdown(grace, [through, blobs] {
    if (through != nullptr) through->flights().Shutdown();
    if (blobs != nullptr) blobs->flights().Shutdown();
  });
  LOG(Info) << "registry door stopped" << common::Kv("address", impl_->http->address().str());
}

}  // namespace mirror
