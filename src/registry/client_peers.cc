// Manifests from the fleet's peers (registry/peers.h): by digest from the
// digest's homes, and a tag, with --peers-offline-tags, from the peers a
// majority of which agree while the registry is down (docs/fleet.md).

#include <algorithm>
#include <map>
#include <vector>

#include "common/log.h"
#include "common/task_group.h"
#include "registry/client.h"
#include "registry/client_internal.h"

namespace registry {

internal::HttpRequest internal::PeerRequest(const ClientOptions& options, const std::string& peer,
                                            const ImageRef& repo, std::string_view kind,
                                            std::string_view reference,
                                            const std::atomic<bool>* cancel) {
  internal::HttpRequest req;
  req.url = "http://" + peer + "/v2/" + repo.path() + "/" + std::string(kind) + "/" +
            std::string(reference) + "?ns=" + repo.domain();
  req.cancel = cancel;
  req.connect_timeout = std::min(options.connect_timeout, std::chrono::seconds(5));
  req.low_speed_limit = options.min_rate_bytes_per_sec;
  req.low_speed_time = options.min_rate_window;
  return req;
}

common::Status internal::PeerOutcome(internal::HttpResult& sent, const std::string& what) {
  if (sent.hook_error) return std::unexpected(std::move(*sent.hook_error));
  if (sent.error == internal::TransportError::kCancelled)
    return common::MakeError(common::Errc::kCancelled, "download of " + what + " cancelled");
  if (sent.error != internal::TransportError::kNone)
    return common::MakeError(common::Errc::kUnavailable,
                             sent.error_text.empty() ? "transfer failed" : sent.error_text);
  const long status = sent.response.status;
  if (status != 200)
    return MakeError(status == 404 ? common::Errc::kNotFound : common::Errc::kUnavailable,
                     "HTTP " + std::to_string(status));
  return {};
}

namespace {

using common::Errc;
using common::MakeError;
using common::Result;
using internal::HttpRequest;
using internal::HttpResult;
using internal::TransportError;

// One stored-only manifest request to one peer: no credentials, no
// registry headers, no redirect followed, no retry. The answer is checked
// as a host's is (internal::CheckManifest): its bytes hash to `reference`
// when that is a digest.
Result<FetchedManifest> PeerManifest(internal::Transport& transport, const ClientOptions& options,
                                     const std::string& peer, const ImageRef& ref,
                                     std::string_view reference, const std::string& shown,
                                     const std::atomic<bool>* cancel) {
  HttpRequest req = internal::PeerRequest(options, peer, ref, "manifests", reference, cancel);
  req.headers.push_back(internal::kAcceptManifests);
  req.headers.push_back(std::string(kPeerStoredOnlyHeader) + ": 1");
  req.max_body = kMaxManifestSize;
  ASSIGN_OR_RETURN(HttpResult sent, transport.Perform(req));
  TRY(internal::PeerOutcome(sent, "manifest " + shown));
  return internal::CheckManifest(reference, shown, sent.response, "peer " + peer);
}

void LogPeerFailure(const common::Error& e, const std::string& shown, const std::string& peer) {
  // A 404 is a peer saying it has not stored it: no warning.
  if (e.code == Errc::kNotFound) {
    LOG(Debug) << "peer has no such manifest, trying the next" << common::Kv("ref", shown)
               << common::Kv("peer", peer);
  } else {
    LOG(Warn) << "peer failed for a manifest, trying the next" << common::Kv("ref", shown)
              << common::Kv("peer", peer) << common::Kv("error", e.message);
  }
}

}  // namespace

std::optional<FetchedManifest> RegistryClient::Impl::ManifestFromPeers(
    const ImageRef& ref, std::string_view digest, const std::string& shown,
    const std::atomic<bool>* cancel) {
  auto parsed = common::Digest::Parse(digest);
  if (!parsed) return std::nullopt;
  for (const std::string& peer : options.peers->HomesFor(*parsed).peers) {
    Result<FetchedManifest> m = PeerManifest(*transport, options, peer, ref, digest, shown, cancel);
    if (m) {
      LOG(Debug) << "manifest from peer" << common::Kv("ref", shown) << common::Kv("peer", peer);
      return std::move(*m);
    }
    if (m.error().code == Errc::kCancelled) return std::nullopt;
    LogPeerFailure(m.error(), shown, peer);
  }
  return std::nullopt;
}

Result<FetchedManifest> RegistryClient::Impl::TagFromPeers(const ImageRef& ref,
                                                           std::string_view tag,
                                                           const std::string& shown,
                                                           common::Error upstream,
                                                           const std::atomic<bool>* cancel) {
  const std::vector<std::string> peers =
      options.peers->TagPeers(ref.domain() + "/" + ref.path() + ":" + std::string(tag));
  LOG(Warn) << "registry unreachable, asking peers which manifest the tag names "
               "(--peers-offline-tags)"
            << common::Kv("ref", shown) << common::Kv("peers", peers.size())
            << common::Kv("error", upstream.message);
  // Every peer is asked at once: one after another, peers that are down
  // too (the same outage) would each add their connect timeout before the
  // pull could fail.
  std::vector<Result<FetchedManifest>> answers(peers.size());
  (void)common::RunJobs(
      peers.size(), {.threads = static_cast<int>(peers.size())}, [&](size_t i) -> common::Status {
        answers[i] = PeerManifest(*transport, options, peers[i], ref, tag, shown, cancel);
        return {};  // every peer is asked whatever the others answer
      });
  // The answers by digest, in the peers' order; each peer's vote counts once.
  std::map<std::string, std::pair<FetchedManifest, int>> votes;
  int answered = 0;
  for (size_t i = 0; i < peers.size(); ++i) {
    const std::string& peer = peers[i];
    Result<FetchedManifest>& m = answers[i];
    if (!m && m.error().code == Errc::kCancelled) return std::unexpected(std::move(m.error()));
    if (!m) {
      LogPeerFailure(m.error(), shown, peer);
      continue;
    }
    ++answered;
    auto [it, fresh] = votes.try_emplace(m->digest.str(), std::move(*m), 0);
    ++it->second.second;
    LOG(Debug) << "peer names a manifest for the tag" << common::Kv("ref", shown)
               << common::Kv("peer", peer) << common::Kv("digest", it->first);
  }
  if (answered == 0)
    return std::unexpected(std::move(upstream).Wrap(
        "registry unreachable and no peer of " + std::to_string(peers.size()) +
        " asked has the tag stored (--peers-offline-tags)"));
  auto best = votes.begin();
  for (auto it = votes.begin(); it != votes.end(); ++it)
    if (it->second.second > best->second.second) best = it;
  if (2 * best->second.second <= answered)
    return std::unexpected(std::move(upstream).Wrap(
        "registry unreachable and the " + std::to_string(answered) +
        " peers that answered name different manifests, none by a majority "
        "(--peers-offline-tags)"));
  LOG(Warn) << "tag resolved by peers while the registry is unreachable" << common::Kv("ref", shown)
            << common::Kv("digest", best->first) << common::Kv("agreeing", best->second.second)
            << common::Kv("answered", answered);
  return std::move(best->second.first);
}

}  // namespace registry
