#pragma once
// Registration of every `gantry` subcommand. Each Register* adds one
// subcommand whose callback stores its exit code in `exit_code`.

#include <CLI/CLI.hpp>

#include "cli/app.h"

namespace cli {

void RegisterCommands(CLI::App& app, GlobalOptions& global, int& exit_code);

}  // namespace cli
