#include "registry/transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "common/fs.h"

namespace registry::internal {
namespace {

using common::Errc;
using common::MakeError;
using common::Result;
using common::Status;

constexpr size_t kMaxErrorBody = 64u << 10;
constexpr size_t kMaxIdleHandles = 16;
constexpr size_t kMaxCaFile = 8u << 20;
// libcurl's receive buffer (default 16 KiB): what one recv() and one
// on_body call (one ingest write) can carry. Larger cuts the syscalls of
// a blob download several times over; idle handles keep theirs, so it
// stays well below the memory a pull may use.
constexpr long kReceiveBuffer = 512L << 10;
// libcurl's upload buffer for a body_file request (default 64 KiB): one
// pread and one send() per fill.
constexpr long kFileBodyBuffer = 512L << 10;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// State of one exchange, reached from libcurl's C callbacks.
struct Exchange {
  const HttpRequest* request = nullptr;
  HttpResponse response;
  bool headers_done = false;
  bool head_called = false;
  bool streaming = false;  // decided at the first body byte
  std::optional<common::Error> hook_error;
  bool cancelled = false;
  // The error body reached kMaxErrorBody and the transfer was stopped on
  // purpose: the response is complete for our needs.
  bool error_body_cut = false;
  std::string forbidden_address;  // what refuse_link_local refused
  int64_t file_body_sent = 0;     // bytes of request->body_file handed to libcurl
};

std::string_view UrlHost(std::string_view url) {
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return {};
  std::string_view rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  size_t at = rest.rfind('@');
  return at == std::string_view::npos ? rest : rest.substr(at + 1);
}

bool Is2xx(long status) { return status >= 200 && status < 300; }

// The head of a 2xx answer is complete: hand it to on_head, or refuse a
// buffered body whose announced length is over the limit before reading
// any of it. False aborts the exchange (the reason is in hook_error).
bool OnHeadComplete(Exchange& ex) {
  const HttpRequest& req = *ex.request;
  if (!Is2xx(ex.response.status) || ex.head_called) return true;
  if (req.on_body) {
    ex.head_called = true;
    if (!req.on_head) return true;
    Status st = req.on_head(ex.response);
    if (!st) {
      ex.hook_error = std::move(st.error());
      return false;
    }
    return true;
  }
  // A HEAD answer announces the length of a body it does not carry.
  if (req.method == "HEAD") return true;
  if (auto len = ex.response.ContentLength(); len && *len > req.max_body) {
    ex.hook_error = common::Error{
        .code = Errc::kResourceExhausted,
        .message = "response body exceeds " + std::to_string(req.max_body) +
                   " bytes (Content-Length: " + ex.response.Header("content-length") + ")"};
    return false;
  }
  return true;
}

size_t HeaderCallback(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t len = size * n;
  std::string_view line(data, len);
  if (line.starts_with("HTTP/")) {
    // A new response (after a 100 Continue, or the only one): start over.
    ex->response.headers.clear();
    ex->response.status = 0;
    ex->headers_done = false;
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) {
      std::string_view rest = line.substr(sp + 1);
      long code = 0;
      for (char c : rest.substr(0, 3)) {
        if (c < '0' || c > '9') {
          code = 0;
          break;
        }
        code = code * 10 + (c - '0');
      }
      ex->response.status = code;
    }
    return len;
  }
  std::string_view trimmed = Trim(line);
  if (trimmed.empty()) {
    ex->headers_done = true;
    // Returning less than len aborts the transfer (CURLE_WRITE_ERROR).
    return OnHeadComplete(*ex) ? len : 0;
  }
  size_t colon = trimmed.find(':');
  if (colon == std::string_view::npos) return len;  // obsolete line folding: ignore
  ex->response.headers.emplace_back(Lower(Trim(trimmed.substr(0, colon))),
                                    std::string(Trim(trimmed.substr(colon + 1))));
  return len;
}

size_t WriteCallback(char* data, size_t size, size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  size_t len = size * n;
  const HttpRequest& req = *ex->request;
  if (req.cancel && req.cancel->load(std::memory_order_relaxed)) {
    ex->cancelled = true;
    return CURL_WRITEFUNC_ERROR;
  }
  bool ok_status = Is2xx(ex->response.status);
  if (ok_status && req.on_body) {
    // Normally done when the head ended; kept for a head without its
    // final empty line.
    if (!OnHeadComplete(*ex)) return CURL_WRITEFUNC_ERROR;
    Status st = req.on_body(std::as_bytes(std::span<const char>(data, len)));
    if (!st) {
      ex->hook_error = std::move(st.error());
      return CURL_WRITEFUNC_ERROR;
    }
    ex->response.streamed_bytes += static_cast<int64_t>(len);
    return len;
  }
  size_t limit = ok_status ? req.max_body : kMaxErrorBody;
  if (ex->response.body.size() + len > limit) {
    if (!ok_status) {
      // An error body is only for the message: keep its start and stop
      // reading (a hostile server could send it for hours).
      ex->response.body.append(data, limit - ex->response.body.size());
      ex->error_body_cut = true;
      return CURL_WRITEFUNC_ERROR;
    }
    ex->hook_error = common::Error{
        .code = Errc::kResourceExhausted,
        .message = "response body exceeds " + std::to_string(req.max_body) + " bytes"};
    return CURL_WRITEFUNC_ERROR;
  }
  ex->response.body.append(data, len);
  return len;
}

int ProgressCallback(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* ex = static_cast<Exchange*>(user);
  if (ex->request->cancel && ex->request->cancel->load(std::memory_order_relaxed)) {
    ex->cancelled = true;
    return 1;
  }
  return 0;
}

// CURLOPT_READFUNCTION for a body_file request: the next bytes of the
// file, read straight into libcurl's upload buffer.
size_t ReadFileBody(char* buffer, size_t size, size_t nitems, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const HttpRequest::FileBody& file = ex->request->body_file;
  const int64_t left = file.size - ex->file_body_sent;
  if (left <= 0) return 0;
  const size_t want =
      static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(size * nitems)));
  for (;;) {
    ssize_t n = ::pread(file.fd, buffer, want, file.offset + ex->file_body_sent);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) {
      ex->file_body_sent += n;
      return static_cast<size_t>(n);
    }
    ex->hook_error = n < 0 ? common::ErrnoError("read the request body").error()
                           : common::Error{common::Errc::kDataLoss, 0,
                                           "the request body's file ended " + std::to_string(left) +
                                               " bytes early"};
    return CURL_READFUNC_ABORT;
  }
}

// CURLOPT_SEEKFUNCTION for a body_file request: libcurl rewinds the body
// to send the request again (a reused connection that turned out dead).
int SeekFileBody(void* user, curl_off_t offset, int origin) {
  auto* ex = static_cast<Exchange*>(user);
  if (origin != SEEK_SET || offset < 0 || offset > ex->request->body_file.size)
    return CURL_SEEKFUNC_CANTSEEK;
  ex->file_body_sent = offset;
  return CURL_SEEKFUNC_OK;
}

// CURLOPT_OPENSOCKETFUNCTION: sees every address libcurl is about to
// connect to, after name resolution, so a name that resolves to a metadata
// address is caught as well as a literal one.
curl_socket_t OpenSocketCallback(void* user, curlsocktype purpose, curl_sockaddr* address) {
  auto* ex = static_cast<Exchange*>(user);
  if (purpose == CURLSOCKTYPE_IPCXN && ex->request->refuse_link_local &&
      IsForbiddenRedirectAddress(&address->addr)) {
    char text[INET6_ADDRSTRLEN] = "?";
    if (address->family == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&address->addr)->sin_addr, text,
                sizeof text);
    else if (address->family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&address->addr)->sin6_addr, text,
                sizeof text);
    ex->forbidden_address = text;
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

TransportError Classify(CURLcode code, CURL* easy) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return TransportError::kConnect;
    case CURLE_OPERATION_TIMEDOUT: {
      // The same code for a connect timeout and for the low-speed abort; a
      // completed connect tells them apart.
      curl_off_t connect_us = 0;
      curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_us);
      return connect_us > 0 ? TransportError::kStall : TransportError::kConnect;
    }
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_USE_SSL_FAILED:
      return TransportError::kTls;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
      return TransportError::kCut;
    case CURLE_ABORTED_BY_CALLBACK:
      return TransportError::kCancelled;
    default:
      return TransportError::kOther;
  }
}

}  // namespace

bool IsForbiddenRedirectAddress(const sockaddr* address) {
  auto v4_forbidden = [](uint32_t a) {
    return (a >> 16) == 0xa9fe /* 169.254.0.0/16 */ || a == 0x646464c8 /* 100.100.100.200 */;
  };
  if (address->sa_family == AF_INET)
    return v4_forbidden(ntohl(reinterpret_cast<const sockaddr_in*>(address)->sin_addr.s_addr));
  if (address->sa_family != AF_INET6) return false;
  const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr;
  if (IN6_IS_ADDR_LINKLOCAL(&a)) return true;  // fe80::/10
  static constexpr uint8_t kAwsMetadata[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                               0,    0,    0,    0,    0, 0, 0x02, 0x54};
  if (std::memcmp(a.s6_addr, kAwsMetadata, 16) == 0) return true;
  if (IN6_IS_ADDR_V4MAPPED(&a)) {
    uint32_t v4;
    std::memcpy(&v4, a.s6_addr + 12, 4);
    return v4_forbidden(ntohl(v4));
  }
  return false;
}

void CurlEasyDeleter::operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }

CurlSlist::~CurlSlist() { curl_slist_free_all(list_); }

CurlSlist& CurlSlist::operator=(CurlSlist&& o) noexcept {
  if (this != &o) {
    curl_slist_free_all(list_);
    list_ = std::exchange(o.list_, nullptr);
  }
  return *this;
}

void CurlSlist::Append(const std::string& line) {
  curl_slist* next = curl_slist_append(list_, line.c_str());
  if (!next) std::abort();
  list_ = next;
}

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

std::optional<uint64_t> HttpResponse::ContentLength() const {
  std::string v = Header("content-length");
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  uint64_t n = 0;
  for (char c : v) {
    if (n > (UINT64_MAX - 9) / 10) return UINT64_MAX;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

std::vector<std::string> HttpResponse::Headers(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers)
    if (k == name) out.push_back(v);
  return out;
}

// DNS and TLS sessions shared by every easy handle of one Transport.
struct Transport::Share {
  CURLSH* sh = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;

  ~Share() {
    if (sh) curl_share_cleanup(sh);
  }
  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Share*>(user)->locks[static_cast<size_t>(data)].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Share*>(user)->locks[static_cast<size_t>(data)].unlock();
  }
};

Transport::Transport(TransportOptions options) : options_(std::move(options)) {}

Transport::~Transport() {
  // Easy handles go before the share they are attached to.
  idle_.clear();
}

Result<std::unique_ptr<Transport>> Transport::Create(TransportOptions options) {
  // curl_global_init is not thread-safe in old libcurl; do it exactly once.
  static const CURLcode global = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (global != CURLE_OK)
    return MakeError(Errc::kInternal,
                     std::string("initialise libcurl: ") + curl_easy_strerror(global));
  std::unique_ptr<Transport> t(new Transport(std::move(options)));
  t->share_ = std::make_unique<Share>();
  t->share_->sh = curl_share_init();
  if (!t->share_->sh) return MakeError(Errc::kInternal, "initialise libcurl share handle");
  curl_share_setopt(t->share_->sh, CURLSHOPT_LOCKFUNC, &Share::Lock);
  curl_share_setopt(t->share_->sh, CURLSHOPT_UNLOCKFUNC, &Share::Unlock);
  curl_share_setopt(t->share_->sh, CURLSHOPT_USERDATA, t->share_.get());
  curl_share_setopt(t->share_->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(t->share_->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

  CurlEasy probe(curl_easy_init());
  if (!probe) return MakeError(Errc::kInternal, "initialise libcurl easy handle");
  char* cainfo = nullptr;
  if (curl_easy_getinfo(probe.get(), CURLINFO_CAINFO, &cainfo) == CURLE_OK && cainfo)
    t->system_ca_file_ = cainfo;
  t->Release(std::move(probe));
  return t;
}

CurlEasy Transport::Acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      CurlEasy e = std::move(idle_.back());
      idle_.pop_back();
      // Keeps the handle's live connections; clears every option.
      curl_easy_reset(e.get());
      return e;
    }
  }
  CurlEasy e(curl_easy_init());
  if (!e) std::abort();
  return e;
}

void Transport::Release(CurlEasy easy) {
  std::lock_guard lock(mu_);
  if (idle_.size() < kMaxIdleHandles) idle_.push_back(std::move(easy));
}

Result<std::shared_ptr<const std::string>> Transport::CaBundle(
    const std::vector<std::string>& ca_files) {
  std::string key;
  for (const std::string& f : ca_files) key += f + '\n';
  {
    std::lock_guard lock(mu_);
    auto it = ca_bundles_.find(key);
    if (it != ca_bundles_.end()) return it->second;
  }
  std::string pem;
  if (!system_ca_file_.empty()) {
    // The system bundle may be missing on a minimal system; the configured
    // CAs alone are then what is trusted.
    auto sys = common::ReadFile(system_ca_file_, kMaxCaFile);
    if (sys) pem = std::move(*sys) + "\n";
  }
  for (const std::string& f : ca_files) {
    ASSIGN_OR_RETURN(std::string data,
                     common::Wrap(common::ReadFile(f, kMaxCaFile), "read CA file `" + f + "`"));
    pem += data;
    pem += "\n";
  }
  auto bundle = std::make_shared<const std::string>(std::move(pem));
  std::lock_guard lock(mu_);
  return ca_bundles_.emplace(key, std::move(bundle)).first->second;
}

Result<HttpResult> Transport::Perform(const HttpRequest& request) {
  std::shared_ptr<const std::string> ca_bundle;
  if (request.tls && !request.tls->ca_files.empty()) {
    ASSIGN_OR_RETURN(ca_bundle, CaBundle(request.tls->ca_files));
  }
  CurlSlist headers;
  for (const std::string& h : request.headers) headers.Append(h);
  // libcurl adds "Expect: 100-continue" to requests with a body; token
  // servers and registries need none.
  const bool has_body =
      request.method == "POST" || request.method == "PUT" || request.method == "PATCH";
  if (has_body) headers.Append("Expect:");

  CurlEasy easy = Acquire();
  CURL* c = easy.get();
  Exchange ex;
  ex.request = &request;
  std::array<char, CURL_ERROR_SIZE> errbuf{};

  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  // Like Go's ProxyFromEnvironment (docker, containerd): loopback
  // registries are never reached through an http(s)_proxy.
  if (IsLoopbackHost(UrlHost(request.url))) curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  curl_easy_setopt(c, CURLOPT_SHARE, share_->sh);
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, kReceiveBuffer);
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf.data());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::chrono::milliseconds(request.connect_timeout).count()));
  if (request.low_speed_limit > 0 && request.low_speed_time.count() > 0) {
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(request.low_speed_limit));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(request.low_speed_time.count()));
  }
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &HeaderCallback);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &ex);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &WriteCallback);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ex);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &ProgressCallback);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &ex);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, &OpenSocketCallback);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &ex);
  if (has_body && request.body_file.fd >= 0) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, nullptr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body_file.size));
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &ReadFileBody);
    curl_easy_setopt(c, CURLOPT_READDATA, &ex);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, &SeekFileBody);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, &ex);
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, kFileBodyBuffer);
    if (request.method != "POST")
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (has_body) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
    if (request.method != "POST")
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  }
  if (request.tls) {
    const TlsConfig& tls = *request.tls;
    if (ca_bundle) {
      curl_blob blob{.data = const_cast<char*>(ca_bundle->data()),
                     .len = ca_bundle->size(),
                     .flags = CURL_BLOB_NOCOPY};  // the bundle lives in ca_bundles_
      curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (!tls.verify) {
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!tls.client_cert.empty()) {
      curl_easy_setopt(c, CURLOPT_SSLCERT, tls.client_cert.c_str());
      curl_easy_setopt(c, CURLOPT_SSLKEY,
                       (tls.client_key.empty() ? tls.client_cert : tls.client_key).c_str());
    }
  }

  CURLcode code = curl_easy_perform(c);
  if (code == CURLE_WRITE_ERROR && ex.error_body_cut) code = CURLE_OK;
  HttpResult result;
  result.url = request.url;
  if (code == CURLE_OK) {
    if (Is2xx(ex.response.status) && request.on_body && !ex.head_called && request.on_head) {
      // A 2xx without a body still gets its head callback.
      ex.head_called = true;
      Status st = request.on_head(ex.response);
      if (!st) ex.hook_error = std::move(st.error());
    }
    if (ex.hook_error) {
      result.error = TransportError::kHook;
      result.hook_error = std::move(ex.hook_error);
    }
    if (ex.response.status >= 300 && ex.response.status < 400) {
      char* location = nullptr;
      if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location)
        ex.response.redirect_url = location;
    }
  } else if (ex.cancelled) {
    result.error = TransportError::kCancelled;
  } else if (!ex.forbidden_address.empty()) {
    result.error = TransportError::kForbiddenAddress;
    result.forbidden_address = ex.forbidden_address;
  } else if (ex.hook_error) {
    result.error = TransportError::kHook;
    result.hook_error = std::move(ex.hook_error);
  } else {
    result.error = Classify(code, c);
    result.error_text = errbuf[0] ? std::string(errbuf.data()) : curl_easy_strerror(code);
    while (!result.error_text.empty() && result.error_text.back() == '\n')
      result.error_text.pop_back();
  }
  result.response = std::move(ex.response);
  // Drop the references to this call's stack before the handle is reused.
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, nullptr);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, nullptr);
  curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, nullptr);
  curl_easy_setopt(c, CURLOPT_READDATA, nullptr);
  curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, nullptr);
  curl_easy_setopt(c, CURLOPT_SEEKDATA, nullptr);
  Release(std::move(easy));
  return result;
}

}  // namespace registry::internal
