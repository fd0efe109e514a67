#pragma once
// The fleet's peers: other gantry nodes whose registry doors serve blobs
// (docs/fleet.md). A PeerSet follows a SOURCE and names, for each blob
// digest, the "home" peers to ask for it (rendezvous hashing), which is
// what the registry client wants (registry/peers.h).
//
//   ASSIGN_OR_RETURN(auto peers, fleet::PeerSet::Start({
//       .source = "dns:gantry-peers.kube-system.svc:5050", .self = "10.0.0.7:5050"}));
//   client_options.peers = peers;   // every pull now asks the homes first
//
// SOURCE: a comma list of
//   dns:NAME:PORT   every A and AAAA record of NAME (getaddrinfo), with PORT:
//                   a Kubernetes headless Service lists its ready pods so;
//   file:PATH       one HOST:PORT a line ('#' starts a comment, blank lines
//                   ignored; HOST an IPv4 address, [IPv6] or a name, taken
//                   as written).
// The peers are the union of the entries, as "host:port" ("[v6]:port"),
// sorted, without duplicates. They are read once by Start and again every
// `refresh` on a thread of the set's own: a file that changed is re-read,
// a name re-resolved. A source that fails then (a file that cannot be
// read, a name that does not resolve) keeps its last list and logs a warn
// line; a file that does not exist, or a name with no record, means no
// peer from it.
//
// Homes (rendezvous, or highest-random-weight, hashing): each peer scores
// hash(digest, peer); the `homes` best of all listed peers, self included,
// are the blob's homes, and HomesFor returns them best first with self
// left out. Every node that lists the same peers names the same homes
// for a blob, so a blob is pulled from the registry by at most `homes`
// nodes; when a peer joins or leaves, only the blobs it is (or becomes) a
// home of change homes. A node that is itself a home asks the other homes
// only for what they have stored (PeerPlan::stored_only), then fetches
// from the registry itself: two homes never wait on each other's
// download.
//
// Thread-safety: HomesFor, TagPeers and Peers from any thread; Start and the
// destructor from one.

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/digest.h"
#include "common/error.h"
#include "common/fs.h"
#include "registry/peers.h"

namespace fleet {

struct PeerSource {
  enum class Kind { kDns, kFile };
  Kind kind = Kind::kFile;
  std::string name;              // kDns: the host name
  std::string port;              // kDns: the port, digits
  std::filesystem::path path{};  // kFile
};

// Parses SOURCE (above). Errors: InvalidArgument naming the entry: an
// unknown scheme, dns: without NAME or a numeric PORT in [1, 65535],
// file: without PATH, an empty list.
[[nodiscard]] common::Result<std::vector<PeerSource>> ParsePeerSource(std::string_view text);

// Checks one "HOST:PORT" of a peer list and returns it as peers are named
// ("[::1]:5050" for an IPv6 address). Errors: InvalidArgument.
[[nodiscard]] common::Result<std::string> ParsePeerAddress(std::string_view text);

// `peers` ordered by their rendezvous score for `digest`, best first.
[[nodiscard]] std::vector<std::string> RendezvousOrder(const common::Digest& digest,
                                                       std::vector<std::string> peers);

struct PeerSetOptions {
  std::string source{};  // ParsePeerSource
  // This node's own address as its peers list it ("10.0.0.7:5050"), never
  // asked; "" when the node serves nothing (a CLI pull).
  std::string self{};
  int homes = 2;  // k, at least 1
  std::chrono::milliseconds refresh{3000};
};

class PeerSet final : public registry::BlobPeers {
 public:
  // Parses the source, reads it once and starts the refresh thread.
  // Errors: InvalidArgument for a bad source, self or homes.
  [[nodiscard]] static common::Result<std::shared_ptr<PeerSet>> Start(PeerSetOptions options);
  ~PeerSet() override;  // stops the refresh thread
  PeerSet(const PeerSet&) = delete;
  PeerSet& operator=(const PeerSet&) = delete;

  // The homes of `digest` other than self, best first (at most `homes`);
  // stored_only when self is one of them.
  [[nodiscard]] registry::PeerPlan HomesFor(const common::Digest& digest) override;
  // For --peers-offline-tags: the 2 * homes + 1 best peers other than self
  // for the rendezvous key sha256(`key`), best first (fewer when fewer
  // are listed). An odd count, so that a strict majority is possible when
  // all of them answer.
  [[nodiscard]] std::vector<std::string> TagPeers(std::string_view key) override;
  // The peers listed now, self included when listed.
  [[nodiscard]] std::vector<std::string> Peers() const;
  // Sets this node's own address (PeerSetOptions::self), for a server that
  // learns it only once it listens. Errors: InvalidArgument.
  [[nodiscard]] common::Status SetSelf(std::string_view self);

 private:
  explicit PeerSet(PeerSetOptions options, std::vector<PeerSource> sources);
  void Refresh();
  void Loop();

  const PeerSetOptions options_;  // its self is self_
  const std::vector<PeerSource> sources_;
  std::vector<std::vector<std::string>> per_source_;      // refresh thread only
  std::vector<std::optional<common::FileStamp>> stamps_;  // refresh thread only
  mutable std::mutex mu_;                                 // guards the fields below
  std::vector<std::string> peers_;
  std::string self_;
  bool stop_ = false;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace fleet
