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
// BlobSink::held_digest, so each byte is hashed once); a peer that answers anything but 200 (404:
// it cannot get the blob), cannot be reached, falls below the rate floor, sends more or fewer bytes
// than `size`, or bytes that do not hash to the digest is dropped for that blob (the sink is
// restarted: nothing it sent stays) and the next peer is tried, then the configured hosts as
// without peers. Manifests never come from peers.

#include <string>
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
};

}  // namespace registry
