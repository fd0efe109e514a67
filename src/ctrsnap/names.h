#pragma once
// The names containerd gives snapshots, as a proxy snapshotter sees them.
//
// containerd's metadata layer (metadata/snapshot.go in v1.6) passes every
// key and parent down as "<namespace>/<sequence>/<key>"; the unpacker's
// keys are "extract-<unique> <chainID>" and its committed names the
// chainID, so a committed layer arrives as e.g.
// "default/12/sha256:4f…" with the label containerd.io/snapshot.ref =
// "sha256:4f…". Snapshots adopted through the remote-snapshot protocol
// keep the backend's own name (for gantry: the bare chainID).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace ctrsnap {

// The label containerd's unpacker puts on each layer's Prepare and Commit:
// the chainID of the committed snapshot it wants.
inline constexpr std::string_view kLabelSnapshotRef = "containerd.io/snapshot.ref";
// containerd's limit on one label (key and value together), labels.Validate.
inline constexpr size_t kMaxLabelBytes = 4096;

struct CtrKey {
  std::string ns;
  uint64_t seq = 0;
  std::string key;
};

// "<namespace>/<sequence>/<key>" split; nullopt when `name` has another
// shape (a bare chainID, a key given by another client).
[[nodiscard]] std::optional<CtrKey> ParseCtrKey(std::string_view name);

// "sha256:" and 64 lower-case hex digits: how gantry names committed layers.
[[nodiscard]] bool IsChainId(std::string_view s);

// The chainID a committed snapshot stands for: the snapshot.ref label when
// it is a chainID, else the key part of a containerd name when that is one
// (the unpacker commits under the chainID), else "".
[[nodiscard]] std::string ChainIdOf(std::string_view name,
                                    const std::map<std::string, std::string>& labels);

}  // namespace ctrsnap
