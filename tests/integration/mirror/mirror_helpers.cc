#include "integration/mirror/mirror_helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/digest.h"
#include "common/fd.h"
#include "common/fs.h"

namespace mirrortest {

std::string HttpReply::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

HttpReply Parse(const std::string& raw) {
  HttpReply r;
  size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return r;  // no complete header block: no answer
  std::istringstream head(raw.substr(0, end));
  std::string line;
  std::getline(head, line);
  // "HTTP/1.1 404 Not Found"
  if (line.rfind("HTTP/1.", 0) == 0 && line.size() >= 12) r.status = std::atoi(line.c_str() + 9);
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = Lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    auto [it, fresh] = r.headers.emplace(name, value);
    if (!fresh) it->second += ", " + value;
  }
  r.body = raw.substr(end + 4);
  return r;
}

}  // namespace

common::Result<HttpReply> RawHttp(uint16_t port, const std::string& request,
                                  std::chrono::milliseconds timeout) {
  common::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return common::ErrnoError("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return common::MakeError(
        common::Errc::kUnavailable,
        "connect to 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  // The server may answer (and close) before it has read everything we
  // send (a refused huge header): a failed send is not an error here.
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return common::MakeError(common::Errc::kUnavailable,
                               "no end of the answer from 127.0.0.1:" + std::to_string(port) +
                                   " in time; received " + std::to_string(raw.size()) + " bytes");
    pollfd p{fd.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // closed (or reset: what arrived is the answer)
    raw.append(buf, static_cast<size_t>(n));
  }
  return Parse(raw);
}

common::Result<HttpReply> Http(uint16_t port, const std::string& method, const std::string& path,
                               const std::vector<std::pair<std::string, std::string>>& headers) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nConnection: close\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "\r\n";
  return RawHttp(port, req);
}

std::string ErrorCode(const HttpReply& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("errors") || !j["errors"].is_array() || j["errors"].empty())
    return "(not an OCI error body: " + r.body.substr(0, 200) + ")";
  return j["errors"][0].value("code", "(no code)");
}

void PointHostAt(const pulltest::Gantry& g, const std::string& host,
                 const std::string& server_url) {
  const fs::path dir = g.registry_config() / host;
  ASSERT_TRUE(common::MkdirAll(dir, 0755));
  ASSERT_TRUE(
      common::AtomicWriteFile(dir / "hosts.toml", "server = \"" + server_url + "\"\n", 0644));
}

std::string MirrorStore::BlobBytes(const common::Digest& d) const {
  auto data = common::ReadFile(layout / "blobs" / "sha256" / d.hex(), 256u << 20);
  EXPECT_TRUE(data) << data.error().message;
  return data ? *data : std::string();
}

void MirrorStore::Create(MirrorStore* out) {
  REQUIRE_TOOLS("docker-registry", "skopeo");
  auto g = pulltest::Gantry::Create();
  ASSERT_TRUE(g) << g.error().message;
  out->gantry = std::make_unique<pulltest::Gantry>(std::move(*g));
  ASSERT_NO_FATAL_FAILURE(pulltest::StartRegistry({}, &out->registry));
  ASSERT_NO_FATAL_FAILURE(pulltest::StartProxy(*out->registry, &out->proxy));
  out->layout = out->gantry->dir() / "layout";
  ASSERT_NO_FATAL_FAILURE(pulltest::PushImage(*out->registry, out->layout,
                                              fixtures::FixtureImageSpec(),
                                              std::string(kRepo) + ":" + kTag, &out->image));
  ASSERT_NO_FATAL_FAILURE(PointHostAt(*out->gantry, kHost, out->proxy->base_url()));
  ASSERT_NO_FATAL_FAILURE(pulltest::PullOk(*out->gantry, {Ref()}));
  ASSERT_NO_FATAL_FAILURE(
      pulltest::PullOk(*out->gantry, {out->registry->host() + "/" + kRepo + ":" + kTag}));
}

void Door::Start(const pulltest::Gantry& g, std::unique_ptr<Door>* out,
                 const std::vector<std::string>& extra) {
  auto door = std::make_unique<Door>();
  door->log_ = g.dir() / "serve.log";
  std::vector<std::string> args = {"--log-level",
                                   "debug",
                                   "serve",
                                   "--listen",
                                   "unix://" + (g.dir() / "g.sock").string(),
                                   "--registry-listen",
                                   "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto child = g.Spawn(args, door->log_, door->log_);
  ASSERT_TRUE(child) << child.error().message;
  door->child_ = std::move(*child);
  constexpr std::string_view kMark = "registry door serving address=127.0.0.1:";
  bool up = fixtures::WaitUntil(
      [&] {
        if (door->child_.Exited()) return true;
        std::string log = door->LogText();
        size_t at = log.find(kMark);
        if (at == std::string::npos) return false;
        door->port_ = static_cast<uint16_t>(std::atoi(log.c_str() + at + kMark.size()));
        return door->port_ != 0;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(20));
  ASSERT_FALSE(door->child_.Exited()) << "gantry serve exited:\n" << door->LogText();
  ASSERT_TRUE(up && door->port_ != 0) << "no door address in 20 s:\n" << door->LogText();
  auto base = Http(door->port_, "GET", "/v2/");
  ASSERT_TRUE(base) << base.error().message;
  ASSERT_EQ(base->status, 200) << base->body << "\n" << door->LogText();
  *out = std::move(door);
}

std::string Door::LogText() const {
  auto text = common::ReadFile(log_);
  return text ? *text : text.error().message;
}

void ExpectBlobsVerify(const fs::path& blobs_dir, const std::vector<common::Digest>& digests) {
  for (const common::Digest& d : digests) {
    auto data = common::ReadFile(blobs_dir / d.hex(), 256u << 20);
    ASSERT_TRUE(data) << d.str() << ": " << data.error().message;
    EXPECT_EQ(common::Digest::Sha256Of(*data), d) << (blobs_dir / d.hex());
  }
}

}  // namespace mirrortest
