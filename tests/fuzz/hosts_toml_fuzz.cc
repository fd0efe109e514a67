// hosts.toml parsing (registry/hosts.h): the input is written as the
// hosts.toml of a registry's own directory and of _default/, and resolved
// through ResolveHosts, the only entry point. The files live in one
// temporary directory per process, rewritten for every input.

#include <fcntl.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string_view>

#include "common/fd.h"
#include "common/fs.h"
#include "fuzz_util.h"
#include "registry/hosts.h"

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kHostDomain = "localhost:5000";

struct ConfigDirs {
  common::TempDir tmp;
  fs::path host_dir, default_dir;
};

const ConfigDirs& Dirs() {
  static const ConfigDirs dirs = [] {
    auto tmp = common::TempDir::Create("gantry-fuzz-hosts");
    if (!tmp) {
      std::fprintf(stderr, "%s\n", tmp.error().message.c_str());
      std::abort();
    }
    ConfigDirs d{.tmp = std::move(*tmp), .host_dir = {}, .default_dir = {}};
    d.host_dir = d.tmp.path() / "host";
    d.default_dir = d.tmp.path() / "default";
    fuzz::Check(common::MkdirAll(d.host_dir / kHostDomain).has_value(), "mkdir host dir");
    fuzz::Check(common::MkdirAll(d.default_dir / "_default").has_value(), "mkdir _default");
    return d;
  }();
  return dirs;
}

void WriteHostsToml(const fs::path& dir, std::string_view text) {
  auto fd = common::Open((dir / "hosts.toml").string(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  fuzz::Check(fd.has_value() && common::WriteAll(fd->get(), text).has_value(), "write hosts.toml");
}

void CheckHosts(const std::vector<registry::RegistryHost>& hosts) {
  fuzz::Check(!hosts.empty(), "the upstream is always among the hosts");
  size_t upstreams = 0;
  for (const auto& h : hosts) {
    fuzz::Check(h.scheme == "http" || h.scheme == "https", "scheme is http or https");
    fuzz::Check(!h.host.empty(), "host is not empty");
    fuzz::Check(h.path_prefix.starts_with('/'), "path prefix is absolute");
    // Headers go into requests as "name: value" lines.
    for (const auto& [name, values] : h.headers) {
      fuzz::Check(!name.empty() && name.find_first_of(":\r\n \t") == std::string::npos,
                  "header name is a token");
      for (const std::string& v : values)
        fuzz::Check(v.find_first_of("\r\n") == std::string::npos, "header value is one line");
    }
    if (!h.is_mirror) ++upstreams;
  }
  fuzz::Check(upstreams == 1, "exactly one upstream");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  const ConfigDirs& dirs = Dirs();
  std::string_view text = fuzz::AsText(data, size);
  WriteHostsToml(dirs.host_dir / kHostDomain, text);
  WriteHostsToml(dirs.default_dir / "_default", text);

  registry::HostsOptions options;
  options.config_dirs = {dirs.host_dir};
  if (auto hosts = registry::ResolveHosts(kHostDomain, options)) CheckHosts(*hosts);
  options.config_dirs = {dirs.default_dir};
  if (auto hosts = registry::ResolveHosts("registry.example.com", options)) CheckHosts(*hosts);
  return 0;
}
