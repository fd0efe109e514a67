#pragma once
// The flags of `gantry serve`, compiled into both `gantry` (which parses and
// validates them, prints their help, then execs gantry-serve) and
// `gantry-serve` (which runs the server). No gRPC here: `gantry` must not
// link it.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/publish_flags.h"
#include "cli/registry_flags.h"

namespace cli {

struct ServeFlags {
  std::string listen = "unix:///run/gantry/gantry.sock";
  std::string socket_mode = "0660";
  std::string socket_group;
  std::string snapshotter_listen;  // "": the snapshotter door is closed
  int max_parallel_pulls = 3;
  int max_concurrent = 3;
  int max_layers = image::kDefaultMaxLayers;
  std::vector<std::string> pinned;
  bool no_unpack = false;
  bool ignore_space_check = false;
  // The registry door (mirror/registry_server.h): "" serves none.
  std::string registry_listen;
  bool registry_allow_remote = false;
  bool registry_pull_through = false;  // needs registry_listen
  // The Prometheus metrics endpoint (metrics/metrics_server.h): "" serves none.
  std::string metrics_listen;
  bool metrics_allow_remote = false;
  // A pre-pull list (image/prepull.h) kept pulled and pinned, re-read
  // when it changes: "" none.
  std::string prepull;
  std::string prepull_refresh;  // a duration ("15m"); "": only on change
  int prepull_jobs = 2;
  RegistryFlags registry;
  // Publication into containerd (--containerd…): address "": none.
  ContainerdFlags containerd;
};

// Adds the `serve` subcommand to `app` with its description, footer and
// flags bound to `flags` (which must outlive `app`), and returns it. The
// caller sets its callback.
CLI::App* AddServeCommand(CLI::App& app, ServeFlags& flags);

}  // namespace cli
