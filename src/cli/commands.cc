#include "cli/commands.h"

namespace cli {

// Subcommands are added here as their modules land (pull, images, …).
void RegisterCommands(CLI::App& /*app*/, GlobalOptions& /*global*/, int& /*exit_code*/) {}

}  // namespace cli
