#pragma once
// Internal to registry/: one HTTP exchange over libcurl, nothing more. No
// retries, no redirects (the caller follows them so it can drop credentials
// on the way), no auth. Used by client.cc and auth.cc.
//
// Connection reuse: a pool of easy handles, each keeping its own connection
// cache across requests, plus a CURLSH sharing DNS and TLS sessions among
// them. (libcurl does not support sharing the connection cache itself
// between concurrently running threads, so it is not shared.)
//
// Thread-safety: Transport is safe to use from many threads at once; each
// Perform call takes an easy handle from the pool for its duration.

#include <curl/curl.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"
#include "registry/hosts.h"

namespace registry::internal {

// RAII owners for libcurl handles.
struct CurlEasyDeleter {
  void operator()(CURL* c) const noexcept;
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;

class CurlSlist {
 public:
  CurlSlist() = default;
  ~CurlSlist();
  CurlSlist(CurlSlist&& o) noexcept : list_(std::exchange(o.list_, nullptr)) {}
  CurlSlist& operator=(CurlSlist&& o) noexcept;
  CurlSlist(const CurlSlist&) = delete;
  CurlSlist& operator=(const CurlSlist&) = delete;
  // Aborts on allocation failure, like the rest of the code base.
  void Append(const std::string& line);
  curl_slist* get() const { return list_; }
  [[nodiscard]] curl_slist* release() { return std::exchange(list_, nullptr); }

 private:
  curl_slist* list_ = nullptr;
};

struct HttpResponse {
  long status = 0;
  // Header names lower-cased, in arrival order, of the final response only.
  std::vector<std::pair<std::string, std::string>> headers;
  // The body when it was not streamed. Non-2xx bodies are only for
  // messages: the first 64 KiB are kept and the rest is not read (the
  // connection is closed instead), so a huge or endless error body cannot
  // hold the exchange.
  std::string body;
  // Absolute Location target of a 3xx answer ("" otherwise).
  std::string redirect_url;
  // Body bytes handed to on_body in this exchange.
  int64_t streamed_bytes = 0;

  // First value of a header ("" when absent); `name` in lower case.
  std::string Header(std::string_view name) const;
  // The Content-Length, nullopt when absent or not a number; values past
  // uint64 saturate.
  std::optional<uint64_t> ContentLength() const;
  std::vector<std::string> Headers(std::string_view name) const;
};

struct HttpRequest {
  std::string method = "GET";  // "GET", "HEAD", or "POST", "PUT", "PATCH" with `body`
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // POST/PUT/PATCH body
  // Instead of `body` when body_file.fd >= 0: the body is `size` bytes of
  // this open file from `offset`, read (pread) as libcurl sends them. A
  // file that ends early aborts the exchange (kCut).
  struct FileBody {
    int fd = -1;
    int64_t offset = 0;
    int64_t size = 0;
  } body_file;
  const TlsConfig* tls = nullptr;  // null: system CAs, verification on
  // Limit for a buffered 2xx body; more fails with ResourceExhausted, at
  // the headers already when Content-Length announces more.
  size_t max_body = 1u << 20;
  // Streaming: for a 2xx answer, on_head sees the status and headers
  // once they are complete, before any body byte is read, then on_body
  // gets the body. An error from
  // either aborts the exchange and is returned in HttpResult::hook_error.
  std::function<common::Status(const HttpResponse&)> on_head;
  std::function<common::Status(std::span<const std::byte>)> on_body;
  // Polled throughout the exchange, also while it waits for the first
  // response byte (libcurl calls back at least once a second):
  // TransportError::kCancelled once set.
  const std::atomic<bool>* cancel = nullptr;
  // Refuse to connect to link-local and cloud metadata addresses
  // (IsForbiddenRedirectAddress), checked on the address a name resolved
  // to: TransportError::kForbiddenAddress, nothing sent. For URLs a server
  // named (redirect targets), not the endpoints the user configured.
  bool refuse_link_local = false;
  // Abort when fewer than low_speed_limit bytes/s arrive for low_speed_time.
  int64_t low_speed_limit = 1024;
  std::chrono::seconds low_speed_time{60};
  std::chrono::seconds connect_timeout{30};
};

enum class TransportError {
  kNone,
  kConnect,           // resolve/connect failed or timed out: nothing was sent
  kTls,               // handshake or certificate problem
  kCut,               // connection broke during the exchange (send/recv, short body)
  kStall,             // below the rate floor for the window
  kCancelled,         // `cancel` was set
  kHook,              // on_head/on_body (or the body limit) failed: see hook_error
  kForbiddenAddress,  // refuse_link_local: the host resolved to such an address
  kOther,             // anything else libcurl reports
};

struct HttpResult {
  std::string url;  // the request's URL
  TransportError error = TransportError::kNone;
  std::string error_text;  // libcurl's description when error != kNone
  // kForbiddenAddress: the address refused ("169.254.169.254").
  std::string forbidden_address;
  std::optional<common::Error> hook_error;
  HttpResponse response;  // complete when error == kNone
};

// Link-local and cloud metadata addresses, where a registry must not
// steer a client: 169.254.0.0/16 (link-local, the metadata service of
// AWS, GCP, Azure, OpenStack, Oracle …), fe80::/10 (IPv6 link-local),
// fd00:ec2::254 (AWS's IPv6 metadata), 100.100.100.200 (Alibaba Cloud's),
// and the IPv4 ones written as IPv4-mapped IPv6.
[[nodiscard]] bool IsForbiddenRedirectAddress(const sockaddr* address);

struct TransportOptions {
  std::string user_agent;
};

class Transport {
 public:
  // Errors: Internal when libcurl cannot be initialised.
  [[nodiscard]] static common::Result<std::unique_ptr<Transport>> Create(TransportOptions options);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Performs one exchange. Errors (in the Result): only local problems such
  // as an unreadable CA file. Network and HTTP-level outcomes are in
  // HttpResult.
  [[nodiscard]] common::Result<HttpResult> Perform(const HttpRequest& request);

  // The system CA bundle libcurl uses by default (for messages).
  const std::string& system_ca_file() const { return system_ca_file_; }

 private:
  struct Share;
  explicit Transport(TransportOptions options);
  CurlEasy Acquire();
  void Release(CurlEasy easy);
  // System CAs plus `ca_files`, concatenated PEM, cached per list.
  common::Result<std::shared_ptr<const std::string>> CaBundle(
      const std::vector<std::string>& ca_files);

  TransportOptions options_;
  std::unique_ptr<Share> share_;
  std::string system_ca_file_;
  std::mutex mu_;
  std::vector<CurlEasy> idle_;                                            // guarded by mu_
  std::map<std::string, std::shared_ptr<const std::string>> ca_bundles_;  // guarded by mu_
};

}  // namespace registry::internal
