// The peer set: sources, rendezvous order, refresh.

#include "fleet/peer_set.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <set>

#include "common/fs.h"
#include "common/log.h"
#include "fleet/text_internal.h"

namespace fleet {
namespace {

using common::Errc;
using common::MakeError;

bool ValidPort(std::string_view port) {
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  return !port.empty() && ec == std::errc() && p == port.data() + port.size() && value >= 1 &&
         value <= 65535;
}

// FNV-1a over the bytes, then MurmurHash3's finaliser: stable across
// builds and machines (every node must rank alike), and well mixed.
uint64_t Score(std::string_view digest_hex, std::string_view peer) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto feed = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  };
  feed(digest_hex);
  feed("|");
  feed(peer);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// Every address of `name` with `port`; NotFound when it has none.
common::Result<std::vector<std::string>> Resolve(const std::string& name, const std::string& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  int rc = ::getaddrinfo(name.c_str(), port.c_str(), &hints, &list);
  if (rc == EAI_NONAME || rc == EAI_NODATA)
    return MakeError(Errc::kNotFound, "resolve `" + name + "`: no address");
  if (rc != 0) return MakeError(Errc::kUnavailable, "resolve `" + name + "`: " + gai_strerror(rc));
  std::vector<std::string> out;
  for (addrinfo* a = list; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ai_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, text,
                  sizeof text);
      out.push_back(std::string(text) + ":" + port);
    } else if (a->ai_family == AF_INET6) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, text,
                  sizeof text);
      out.push_back("[" + std::string(text) + "]:" + port);
    }
  }
  ::freeaddrinfo(list);
  return out;
}

// The peers a list file names; malformed lines are logged and skipped.
std::vector<std::string> ParseListFile(const std::string& text, const std::filesystem::path& path) {
  std::vector<std::string> out;
  size_t line_no = 0;
  for (size_t at = 0; at <= text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + at, end - at);
    at = end + 1;
    ++line_no;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = internal::TrimBlanks(line);
    if (line.empty()) continue;
    auto peer = ParsePeerAddress(line);
    if (!peer) {
      LOG(Warn) << "peer list: line skipped" << common::Kv("file", path.string())
                << common::Kv("line", line_no) << common::Kv("error", peer.error().message);
      continue;
    }
    out.push_back(std::move(*peer));
  }
  return out;
}

}  // namespace

namespace internal {

std::string_view TrimBlanks(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> CommaList(std::string_view text) {
  std::vector<std::string_view> out;
  for (size_t at = 0; at <= text.size();) {
    size_t comma = text.find(',', at);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view entry = TrimBlanks(text.substr(at, comma - at));
    at = comma + 1;
    if (!entry.empty()) out.push_back(entry);
  }
  return out;
}

}  // namespace internal

common::Result<std::vector<PeerSource>> ParsePeerSource(std::string_view text) {
  std::vector<PeerSource> out;
  for (std::string_view entry : internal::CommaList(text)) {
    PeerSource src;
    if (entry.starts_with("dns:")) {
      std::string_view rest = entry.substr(4);
      size_t colon = rest.rfind(':');
      if (colon == std::string_view::npos || colon == 0 || !ValidPort(rest.substr(colon + 1)))
        return MakeError(Errc::kInvalidArgument,
                         "peer source `" + std::string(entry) + "`: want dns:NAME:PORT");
      src.kind = PeerSource::Kind::kDns;
      src.name = std::string(rest.substr(0, colon));
      src.port = std::string(rest.substr(colon + 1));
    } else if (entry.starts_with("file:")) {
      if (entry.size() == 5)
        return MakeError(Errc::kInvalidArgument,
                         "peer source `" + std::string(entry) + "`: want file:PATH");
      src.kind = PeerSource::Kind::kFile;
      src.path = std::string(entry.substr(5));
    } else {
      return MakeError(Errc::kInvalidArgument,
                       "peer source `" + std::string(entry) + "`: want dns:NAME:PORT or file:PATH");
    }
    out.push_back(std::move(src));
  }
  if (out.empty()) return MakeError(Errc::kInvalidArgument, "peer source is empty");
  return out;
}

common::Result<std::string> ParsePeerAddress(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return MakeError(Errc::kInvalidArgument,
                     "peer `" + std::string(text) + "`: " + std::string(why));
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("want HOST:PORT");
  std::string_view host = text.substr(0, colon);
  if (!ValidPort(text.substr(colon + 1))) return bad("port is not a number in [1, 65535]");
  if (host.starts_with('[')) {
    if (!host.ends_with(']')) return bad("unclosed [");
    in6_addr a{};
    if (::inet_pton(AF_INET6, std::string(host.substr(1, host.size() - 2)).c_str(), &a) != 1)
      return bad("not an IPv6 address in []");
    return std::string(text);
  }
  if (host.empty()) return bad("no host");
  if (host.find(':') != std::string_view::npos) return bad("write an IPv6 address in []");
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_'))
      return bad("host has a character other than [A-Za-z0-9._-]");
  return std::string(text);
}

std::vector<std::string> RendezvousOrder(const common::Digest& digest,
                                         std::vector<std::string> peers) {
  const std::string hex = digest.hex();
  std::vector<std::pair<uint64_t, std::string>> scored;
  scored.reserve(peers.size());
  for (std::string& p : peers) scored.emplace_back(Score(hex, p), std::move(p));
  // Ties (never in practice) broken by name, so that the order is total.
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<std::string> out;
  out.reserve(scored.size());
  for (auto& [score, p] : scored) out.push_back(std::move(p));
  return out;
}

common::Result<std::shared_ptr<PeerSet>> PeerSet::Start(PeerSetOptions options) {
  ASSIGN_OR_RETURN(std::vector<PeerSource> sources, ParsePeerSource(options.source));
  if (options.homes < 1)
    return MakeError(Errc::kInvalidArgument,
                     "peer homes " + std::to_string(options.homes) + ": want 1 or more");
  if (!options.self.empty()) {
    ASSIGN_OR_RETURN(options.self, common::Wrap(ParsePeerAddress(options.self), "peer self"));
  }
  if (options.refresh <= std::chrono::milliseconds(0)) options.refresh = std::chrono::seconds(3);
  std::shared_ptr<PeerSet> set(new PeerSet(std::move(options), std::move(sources)));
  set->Refresh();
  set->thread_ = std::thread([raw = set.get()] { raw->Loop(); });
  return set;
}

PeerSet::PeerSet(PeerSetOptions options, std::vector<PeerSource> sources)
    : options_(std::move(options)),
      sources_(std::move(sources)),
      per_source_(sources_.size()),
      stamps_(sources_.size()),
      self_(options_.self) {}

common::Status PeerSet::SetSelf(std::string_view self) {
  ASSIGN_OR_RETURN(std::string parsed, common::Wrap(ParsePeerAddress(self), "peer self"));
  std::lock_guard l(mu_);
  self_ = std::move(parsed);
  return {};
}

PeerSet::~PeerSet() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeerSet::Loop() {
  std::unique_lock l(mu_);
  while (!stop_) {
    if (cv_.wait_for(l, options_.refresh, [this] { return stop_; })) break;
    l.unlock();
    Refresh();
    l.lock();
  }
}

void PeerSet::Refresh() {
  for (size_t i = 0; i < sources_.size(); ++i) {
    const PeerSource& src = sources_[i];
    if (src.kind == PeerSource::Kind::kDns) {
      auto found = Resolve(src.name, src.port);
      if (found) {
        per_source_[i] = std::move(*found);
      } else if (found.error().code == Errc::kNotFound) {
        per_source_[i].clear();
      } else {
        LOG(Warn) << "peer source: keeping the last list" << common::Kv("name", src.name)
                  << common::Kv("error", found.error().message);
      }
      continue;
    }
    std::optional<common::FileStamp> stamp = common::StampOf(src.path);
    if (!stamp && errno == ENOENT) {
      per_source_[i].clear();
      stamps_[i].reset();
      continue;
    }
    if (stamp && stamp == stamps_[i]) continue;
    auto text = common::ReadFile(src.path, 1u << 20);
    if (!text) {
      LOG(Warn) << "peer source: keeping the last list" << common::Kv("file", src.path.string())
                << common::Kv("error", text.error().message);
      continue;
    }
    per_source_[i] = ParseListFile(*text, src.path);
    stamps_[i] = stamp;
  }
  std::set<std::string> all;
  for (const auto& list : per_source_) all.insert(list.begin(), list.end());
  std::vector<std::string> peers(all.begin(), all.end());
  std::lock_guard l(mu_);
  if (peers != peers_)
    LOG(Info) << "peers changed" << common::Kv("count", peers.size()) << common::Kv("self", self_);
  peers_ = std::move(peers);
}

registry::PeerPlan PeerSet::HomesFor(const common::Digest& digest) {
  std::vector<std::string> peers;
  std::string self;
  {
    std::lock_guard l(mu_);
    peers = peers_;
    self = self_;
  }
  std::vector<std::string> ranked = RendezvousOrder(digest, std::move(peers));
  if (ranked.size() > static_cast<size_t>(options_.homes)) ranked.resize(options_.homes);
  registry::PeerPlan plan;
  plan.stored_only = std::erase(ranked, self) > 0;
  plan.peers = std::move(ranked);
  return plan;
}

std::vector<std::string> PeerSet::TagPeers(std::string_view key) {
  std::vector<std::string> peers;
  std::string self;
  {
    std::lock_guard l(mu_);
    peers = peers_;
    self = self_;
  }
  std::erase(peers, self);
  std::vector<std::string> ranked =
      RendezvousOrder(common::Digest::Sha256Of(key), std::move(peers));
  if (ranked.size() > static_cast<size_t>(2 * options_.homes + 1))
    ranked.resize(2 * options_.homes + 1);
  return ranked;
}

std::vector<std::string> PeerSet::Peers() const {
  std::lock_guard l(mu_);
  return peers_;
}

}  // namespace fleet
