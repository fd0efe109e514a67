// gantry runtime …: the built-in OCI runtime, the same code as the
// gantry-runtime executable, with runc's command line. Every argument after
// `runtime` is passed through unparsed (its own --root, --log, … included).

#include "cli/commands.h"
#include "ociruntime/runtime_cli.h"

namespace cli {

void RegisterRuntime(CLI::App& app, GlobalOptions& /*global*/, int& exit_code) {
  CLI::App* sub = app.add_subcommand(
      "runtime",
      "OCI runtime with runc's command line: create, start, state, kill, delete, run, "
      "list, ps (also installed as gantry-runtime)");
  sub->prefix_command();
  // Not the global options' fallthrough (app.cc): `gantry runtime --root X`
  // is the runtime's own state root, as with runc, not the store's.
  sub->fallthrough(false);
  sub->set_help_flag();  // `gantry runtime --help` reaches the runtime's own usage
  sub->callback([sub, &exit_code] {
    exit_code = ociruntime::RuntimeMain(sub->remaining(), "gantry runtime");
  });
}

}  // namespace cli
