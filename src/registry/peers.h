#pragma once
// Peers: other gantry nodes whose registry doors (mirror/registry_server.h)
// a RegistryClient asks for a blob before the registry's own hosts
// (ClientOptions::peers). The fleet module (fleet/peer_set.h) implements
// the interface from a peer list; the client only walks what it returns.
//
// What the client does with them (client.h, FetchBlob): for a blob it
// holds no byte of yet (sink.offset() == 0), each peer HomesFor names is
// asked in turn with one plain HTTP request,
//   GET http://PEER/v2/<repository path>/blobs/<digest>?ns=<registry domain>
//   Gantry-Blob-Size: <size>            (when the size is known)
//   Gantry-Peer-Stored-Only: 1          (when PeerPlan::stored_only)
// with no Authorization, no configured registry headers, no client
// certificate, no redirect followed and no retry: the requester's
// credentials never leave it. The bytes are hashed as they are written to
// the sink (by the sink itself when it keeps a running hash,
// BlobSink::held_digest, so each byte is hashed once); a peer that answers
// anything but 200 (404: it cannot get the blob), cannot be reached, falls
// below the rate floor, sends more or fewer bytes than `size`, or bytes
// that do not hash to the digest is dropped for that blob (the sink is
// restarted: nothing it sent stays) and the next peer is tried, then the
// configured hosts as without peers.
//
// Manifests (client.h, GetManifest): one by digest is first asked of the
// homes of its digest, the same way but always stored-only
//   GET http://PEER/v2/<repository path>/manifests/<digest>?ns=<domain>
//   Gantry-Peer-Stored-Only: 1
// and taken only when its body hashes to the digest; a peer that fails is
// dropped for it, then the hosts are asked. A tag is resolved against the
// hosts only, unless ClientOptions::peers_offline_tags and every host
// failed with Unavailable: then the TagPeers of the tag are asked for it
// (stored-only) and the digest a strict majority of the answering peers
// name is taken (docs/fleet.md, "Offline tags").

#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"

namespace registry {

// Header a requester sends so that a home peer that pulls the blob through
// knows its size before the registry answers (docs/fleet.md).
inline constexpr char kPeerBlobSizeHeader[] = "Gantry-Blob-Size";
// Header asking a peer for a blob only if it has it stored: no pull
// through, no following of a download in flight. A home asks the other
// homes so, which keeps two homes from each waiting on the other.
inline constexpr char kPeerStoredOnlyHeader[] = "Gantry-Peer-Stored-Only";

// Whom to ask for one blob.
struct PeerPlan {
  std::vector<std::string> peers{};  // "host:port" ("[v6]:port"), in order
  bool stored_only = false;          // send kPeerStoredOnlyHeader
};

class BlobPeers {
 public:
  virtual ~BlobPeers() = default;
  // The peers to ask for `digest`; no peers: ask none. Called once per
  // blob download, from any thread: implementations are thread-safe.
  [[nodiscard]] virtual PeerPlan HomesFor(const common::Digest& digest) = 0;
  // The peers to ask which manifest the tag `key` ("<registry>/<path>:<tag>")
  // names when the registry is down, self left out, in an order every node
  // agrees on; none: ask none. Thread-safe, like HomesFor. The default
  // names none.
  [[nodiscard]] virtual std::vector<std::string> TagPeers(std::string_view key) {
    (void)key;
    return {};
  }
};

}  // namespace registry
