#include "trust/scope.h"

#include "trust/identity.h"

namespace trust {
namespace {

bool IsLabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

// "example.com": dot-separated DNS labels, no port.
std::string WildcardDomainProblem(std::string_view domain) {
  if (domain.empty()) return "wildcard scope `*.` names no domain";
  size_t start = 0;
  for (;;) {
    size_t dot = domain.find('.', start);
    std::string_view label =
        domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
    bool ok = !label.empty() && label.front() != '-' && label.back() != '-';
    for (char c : label) ok = ok && IsLabelChar(c);
    if (!ok)
      return "wildcard scope `*." + std::string(domain) +
             "` must be `*.` followed by a domain name (no port, no other `*`)";
    if (dot == std::string_view::npos) return {};
    start = dot + 1;
  }
}

// A registry host with its optional port, as ImageRef keeps it.
std::string HostProblem(std::string_view host) {
  std::string probe = std::string(host) + "/x";
  auto ref = registry::ImageRef::Parse(probe);
  if (!registry::NamesRegistry(probe))
    return "`" + std::string(host) + "` is not a registry host (write names fully expanded: " +
           "docker.io/library/busybox, not busybox)";
  if (!ref) return "`" + std::string(host) + "` is not a valid registry host[:port]";
  if (ref->domain() != host)
    return "`" + std::string(host) + "` is not in the canonical form `" + ref->domain() + "`";
  return {};
}

// A name with or without tag or digest; `allow_tag_digest` says whether a
// tag or digest may follow it. A name without them is a repository or a
// namespace, so it is not normalised as an image name would be
// ("docker.io/openshift" is the namespace of docker.io/openshift/origin,
// not docker.io/library/openshift); its host must be canonical. One with a
// tag or digest names an image and must be in the fully expanded form.
std::string NameProblem(std::string_view text, bool allow_tag_digest) {
  size_t slash = text.find('/');
  if (std::string why = HostProblem(text.substr(0, slash)); !why.empty()) return why;
  if (slash == std::string_view::npos) return {};
  auto parsed = ParseNormalizedReference(text);
  if (!parsed) return parsed.error().message;
  if (parsed->name_only) return {};
  if (!allow_tag_digest) return "`" + std::string(text) + "` must not have a tag or digest";
  const registry::ImageRef& ref = parsed->ref;
  if (ref.tag() && ref.digest())
    return "`" + std::string(text) + "` has both a tag and a digest; a scope names one of them";
  if (ref.str() != text)
    return "`" + std::string(text) + "` is not in the fully expanded form `" + ref.str() + "`";
  return {};
}

}  // namespace

std::vector<std::string> LocalScopes(std::string_view transport, std::string_view path) {
  std::vector<std::string> scopes;
  if (transport == "docker-archive" || path.empty()) return scopes;
  // No "PATH:TAG": containers/image leaves the tag out of an oci: image's
  // identity ("$dir:$someimage" and "$dir:" may be the same image), so
  // such a scope loads but never matches (skopeo ignores it too).
  for (std::string_view p = path; p.size() > 1;) {
    scopes.emplace_back(p);
    size_t slash = p.find_last_of('/');
    if (slash == std::string_view::npos || slash == 0) break;
    p = p.substr(0, slash);
  }
  return scopes;
}

std::vector<std::string> DockerScopes(const registry::ImageRef& image) {
  std::vector<std::string> scopes;
  std::string name = image.name();
  if (image.digest()) scopes.push_back(name + "@" + image.digest()->str());
  if (image.tag()) scopes.push_back(name + ":" + *image.tag());
  // The repository, its namespaces, then the host: name is domain/path, so
  // cutting at each '/' from the right ends at the domain.
  for (std::string_view n = name;;) {
    scopes.emplace_back(n);
    size_t slash = n.rfind('/');
    if (slash == std::string_view::npos) break;
    n = n.substr(0, slash);
  }
  // Wildcards apply to the host whatever its port; an IPv6 literal has no
  // parent domains.
  std::string_view host = image.domain();
  if (!host.empty() && host.front() == '[') return scopes;
  host = host.substr(0, host.find(':'));
  for (size_t dot = host.find('.'); dot != std::string_view::npos; dot = host.find('.')) {
    host = host.substr(dot + 1);
    scopes.push_back("*." + std::string(host));
  }
  return scopes;
}

std::string DockerScopeProblem(std::string_view scope) {
  if (scope.starts_with("*.")) return WildcardDomainProblem(scope.substr(2));
  if (scope.find('*') != std::string_view::npos)
    return "`" + std::string(scope) + "`: a wildcard is allowed only as a leading `*.`";
  return NameProblem(scope, true);
}

std::string RepositoryPrefixProblem(std::string_view prefix) {
  if (prefix.find('*') != std::string_view::npos)
    return "`" + std::string(prefix) + "`: a prefix has no wildcards";
  return NameProblem(prefix, false);
}

}  // namespace trust
