// OCI runtime bundle config.json parsing and validation
// (ociruntime/runtime_config.h), including the seccomp profile compile, and
// the `exec --process` and `update --resources` documents.

#include "fuzz_util.h"
#include "ociruntime/runtime_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::QuietLogs();
  std::string_view text = fuzz::AsText(data, size);
  if (auto config = ociruntime::rt::ParseConfig(text, "/run/bundle")) {
    fuzz::Check(config->rootfs.is_absolute(), "rootfs is absolute");
    fuzz::Check(!config->process.args.empty(), "process.args is not empty");
    for (const auto& m : config->mounts) {
      auto normal = ociruntime::rt::NormalizeContainerPath(m.destination);
      fuzz::Check(normal && *normal == m.destination, "mount destination is normalised");
    }
    for (const auto* hooks :
         {&config->hooks.prestart, &config->hooks.create_runtime, &config->hooks.create_container,
          &config->hooks.start_container, &config->hooks.poststart, &config->hooks.poststop})
      for (const auto& hook : *hooks)
        fuzz::Check(hook.path.starts_with('/'), "hook path is absolute");
    // Compiled in memory: an empty cache directory means no cache.
    (void)ociruntime::rt::CompileSeccomp(config->seccomp, {});
  }
  (void)ociruntime::rt::ParseProcessJson(text);
  (void)ociruntime::rt::ParseResourcesJson(text);
  return 0;
}
