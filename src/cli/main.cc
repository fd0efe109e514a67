// The `gantry` command line: parses flags, dispatches to one subcommand,
// maps its error to an exit code. Logic lives in the libraries.

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/app.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"gantry: daemonless container image and snapshot service", "gantry"};
  app.require_subcommand(0, 1);
  app.footer(cli::ExitCodeHelp());

  cli::GlobalOptions global;
  cli::AddGlobalOptions(app, global);

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
  cli::RegisterServe(app, global, exit_code, argv);
  cli::RegisterGenerate(app, exit_code);

  app.parse_complete_callback([&] {
    // Before any command runs (the unpacker sizes its budget of open files
    // from the limit at its first apply). Not for `gantry runtime`: the
    // container process would inherit the raised limit, and a runtime
    // leaves a container's limits as its caller set them unless
    // config.json says otherwise (crun; runc too when built before Go
    // 1.19). Credential helpers inherit it; they open few files, and those
    // written in Go raise it themselves anyway.
    cli::ApplyGlobalOptions(global, /*raise_open_files=*/!app.got_subcommand("runtime"));
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
