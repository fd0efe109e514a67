#pragma once
// Scopes of the docker transport: the keys of policy.json's
// `transports.docker` and of registries.d's `docker` map
// (containers-policy.json(5), containers-registries.d(5)).
//
// A scope is, from most to least specific:
//   docker.io/library/busybox:1.36   one image, by tag
//   docker.io/library/busybox@sha256:…  one image, by digest
//   docker.io/library/busybox        a repository
//   docker.io/library                a namespace (any depth)
//   docker.io, localhost:5000        a registry host (with its port)
//   *.example.com                    every subdomain of example.com (not
//                                    example.com itself), any port
// Names are in the fully expanded form: "busybox" is written
// docker.io/library/busybox. An image matches the most specific scope
// present; the candidates are listed by DockerScopes, as containers/image's
// docker/policyconfiguration/naming.go lists them.
//
// Pure functions; thread-safe.

#include <string>
#include <string_view>
#include <vector>

#include "registry/reference.h"

namespace trust {

// The scopes that match `image`, most specific first: the image itself
// (name@digest, then name:tag, for each it carries), the repository, each
// parent namespace, the host[:port], then "*.<domain>" for each parent
// domain of the host with the port removed, longest first
// (registry.example.com:5000/a/b:1 → …, "registry.example.com:5000",
// "*.example.com", "*.com"). The transport's "" scope is not included.
[[nodiscard]] std::vector<std::string> DockerScopes(const registry::ImageRef& image);

// The scopes that match an image of a local transport, most specific
// first, as containers/image looks them up (oci/layout and oci/archive's
// PolicyConfigurationNamespaces): "PATH", then each parent directory of
// PATH up to, not including, "/" ("/srv/img/app" → "/srv/img", "/srv").
// The tag is never part of them: a "DIR:TAG" scope (which
// containers-policy.json(5) allows to be written) never matches, in
// skopeo as here.
// None for docker-archive, whose only scope is "" (containers/image gives
// its images no identity), and none when PATH is empty (a pipe).
// The transport's "" scope is not included.
[[nodiscard]] std::vector<std::string> LocalScopes(std::string_view transport,
                                                   std::string_view path);

// Why `scope` is not a valid non-empty docker scope (the forms above,
// canonical, so that it can match something), or "" when it is valid.
// "busybox", "docker.io/busybox", "index.docker.io" and "*.example.com:5000"
// are refused, each with the reason.
[[nodiscard]] std::string DockerScopeProblem(std::string_view scope);

// Why `prefix` is not a valid remapIdentity prefix or signedPrefix
// (host[:port], namespace or repository, fully expanded, without tag,
// digest or wildcard), or "" when it is valid.
[[nodiscard]] std::string RepositoryPrefixProblem(std::string_view prefix);

}  // namespace trust
