#include "registry/hosts_toml.h"

#include <algorithm>

#include "registry/hosts.h"
#include "registry/reference.h"

namespace registry {
namespace {

using common::Errc;
using common::MakeError;

// scheme://host[:port][/path] with a scheme of http or https and nothing
// that TOML's basic strings would need escaped.
common::Status CheckMirrorUrl(std::string_view url) {
  auto fail = [&](const std::string& why) {
    return MakeError(Errc::kInvalidArgument, "mirror URL `" + std::string(url) + "`: " + why);
  };
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return fail("no scheme (http:// or https://)");
  std::string_view scheme = url.substr(0, sep);
  if (scheme != "http" && scheme != "https") return fail("the scheme must be http or https");
  std::string_view rest = url.substr(sep + 3);
  std::string_view host = rest.substr(0, rest.find('/'));
  if (host.empty()) return fail("no host");
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == '"' || c == '\\' || c == 0x7f || c == '?' ||
        c == '#' || c == '@')
      return fail("must be scheme://host[:port][/path]");
  return {};
}

common::Status CheckTomlPath(std::string_view what, std::string_view path) {
  bool plain =
      !path.empty() && path.front() == '/' && std::none_of(path.begin(), path.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '"' || c == '\\';
      });
  if (!plain)
    return MakeError(
        Errc::kInvalidArgument,
        std::string(what) + " `" + std::string(path) +
            "`: not an absolute path, or holds a quote, backslash or control character");
  return {};
}

}  // namespace

common::Result<std::string> UpstreamUrl(std::string_view domain) {
  const std::string d(domain);
  auto bad = [&] {
    return MakeError(Errc::kInvalidArgument, "`" + d + "` is not a registry host");
  };
  if (d.empty() || d.find_first_of("/@\"\\ ") != std::string::npos || !NamesRegistry(d + "/x"))
    return bad();
  auto ref = ImageRef::Parse(d + "/x");
  if (!ref) return bad();
  if (ref->domain() == kDefaultDomain) return std::string("https://registry-1.docker.io");
  return std::string(IsLoopbackHost(ref->domain()) ? "http://" : "https://") + ref->domain();
}

common::Result<std::string> MirrorHostsToml(std::string_view domain,
                                            const std::vector<std::string>& mirrors) {
  ASSIGN_OR_RETURN(std::string server, UpstreamUrl(domain));
  if (mirrors.empty())
    return MakeError(Errc::kInvalidArgument,
                     "hosts.toml for `" + std::string(domain) + "`: no mirror");
  std::string out = "server = \"" + server + "\"\n";
  for (const std::string& m : mirrors) {
    TRY(CheckMirrorUrl(m));
    out += "\n[host.\"" + m + "\"]\n  capabilities = [\"pull\", \"resolve\"]\n";
  }
  return out;
}

common::Result<std::string> ContainerdConfigToml(const ContainerdConfigOptions& options) {
  TRY(CheckTomlPath("snapshotter socket", options.snapshotter_socket));
  TRY(CheckTomlPath("certs dir", options.certs_dir));
  const std::string name = kContainerdSnapshotterName;
  return "version = 2\n\n[proxy_plugins." + name + "]\n  type = \"snapshot\"\n  address = \"" +
         options.snapshotter_socket +
         "\"\n\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"" + name +
         "\"\n\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"" +
         options.certs_dir + "\"\n";
}

}  // namespace registry
