// The `gantry` command line: parses flags, dispatches to one subcommand,
// maps its error to an exit code. Logic lives in the libraries.

#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/app.h"
#include "cli/commands.h"
#include "common/fd.h"
#include "common/log.h"

#ifndef GANTRY_VERSION
#define GANTRY_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  CLI::App app{"gantry: daemonless container image and snapshot service", "gantry"};
  app.set_version_flag("--version,-V", std::string("gantry ") + GANTRY_VERSION);
  app.require_subcommand(0, 1);
  app.footer(cli::ExitCodeHelp());

  cli::GlobalOptions global;
  global.root = cli::DefaultRoot();
  app.add_option("--root", global.root, "Store root directory")
      ->default_str(global.root.string());
  app.add_option("--log-level", global.log_level, "Log level: debug, info, warn, error, off")
      ->default_str(global.log_level)
      ->check(CLI::IsMember({"debug", "info", "warn", "warning", "error", "off"}));

  app.add_option("--registry-config", global.registry_config,
                 "Registry hosts directory (containerd hosts.toml and certs.d layout)")
      ->default_str(global.registry_config.string());
  app.add_option("--snapshotter", global.snapshotter,
                 "Snapshotter: overlayfs (falls back to native where overlay cannot be mounted) "
                 "or native")
      ->default_str(global.snapshotter)
      ->check(CLI::IsMember({"overlayfs", "native"}));

  int exit_code = cli::kExitOk;
  auto* help = app.add_subcommand("help", "Show help for gantry or one of its commands");
  std::string help_topic;
  help->add_option("command", help_topic, "Command to describe");
  help->callback([&] {
    if (help_topic.empty()) {
      // app.help() would describe the `help` subcommand itself once it has
      // been parsed; ask the formatter for the top level directly.
      std::cout << app.get_formatter()->make_help(&app, "gantry", CLI::AppFormatMode::Normal);
      return;
    }
    CLI::App* sub = nullptr;
    try {
      sub = app.get_subcommand(help_topic);
    } catch (const CLI::OptionNotFound&) {
    }
    if (sub == nullptr) {
      std::cerr << "gantry: help: unknown command `" << help_topic << "`\n";
      exit_code = cli::kExitUsage;
      return;
    }
    std::cout << sub->help();
  });

  cli::RegisterCommands(app, global, exit_code);

  app.parse_complete_callback([&] {
    common::SetLogLevel(*common::ParseLogLevel(global.log_level));
    // Before any command runs (the unpacker sizes its budget of open files
    // from the limit at its first apply). Not for `gantry runtime`: the
    // container process would inherit the raised limit, and a runtime
    // leaves a container's limits as its caller set them unless
    // config.json says otherwise (crun; runc too when built before Go
    // 1.19). Credential helpers inherit it; they open few files, and those
    // written in Go raise it themselves anyway.
    if (app.got_subcommand("runtime")) return;
    auto before = common::RaiseOpenFileLimit();
    if (!before)
      LOG(Debug) << "cannot raise the open file limit"
                 << common::Kv("error", before.error().message);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : cli::kExitUsage;
  }
  if (app.get_subcommands().empty()) {
    std::cout << app.help();
    return cli::kExitOk;
  }
  return exit_code;
}
