#pragma once
// Registration of every `gantry` subcommand. Each Register* adds one
// subcommand (defined in its own cmd_*.cc) whose callback stores its exit
// code in `exit_code`.

#include <CLI/CLI.hpp>

#include "cli/app.h"

namespace cli {

void RegisterPull(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterUnpack(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterLoad(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterImages(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterInspect(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterRmi(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterPush(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterTag(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterLogin(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterPrune(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterDf(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterFsck(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterSnapshot(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterMount(CLI::App& app, GlobalOptions& global, int& exit_code);    // mount and umount
void RegisterBundle(CLI::App& app, GlobalOptions& global, int& exit_code);   // bundle and bundle rm
void RegisterRuntime(CLI::App& app, GlobalOptions& global, int& exit_code);  // = gantry-runtime
void RegisterContainerdConfig(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterSave(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterCopy(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterPublish(CLI::App& app, GlobalOptions& global, int& exit_code);
void RegisterPrepull(CLI::App& app, GlobalOptions& global, int& exit_code);
// `gantry serve`: its flags (serve_flags.h), and a callback that execs the
// gantry-serve executable beside this one with `argv` (main's, unchanged).
void RegisterServe(CLI::App& app, GlobalOptions& global, int& exit_code, char** argv);
// The hidden `gantry __generate man|bash|zsh DIR` (man pages and shell
// completions from the tree of `app`); registered last, after every command.
void RegisterGenerate(CLI::App& app, int& exit_code);

// Every subcommand but `serve`, which needs main's argv.
inline void RegisterCommands(CLI::App& app, GlobalOptions& global, int& exit_code) {
  RegisterPull(app, global, exit_code);
  RegisterUnpack(app, global, exit_code);
  RegisterLoad(app, global, exit_code);
  RegisterImages(app, global, exit_code);
  RegisterInspect(app, global, exit_code);
  RegisterRmi(app, global, exit_code);
  RegisterPush(app, global, exit_code);
  RegisterTag(app, global, exit_code);
  RegisterLogin(app, global, exit_code);
  RegisterPrune(app, global, exit_code);
  RegisterDf(app, global, exit_code);
  RegisterFsck(app, global, exit_code);
  RegisterSnapshot(app, global, exit_code);
  RegisterMount(app, global, exit_code);
  RegisterBundle(app, global, exit_code);
  RegisterRuntime(app, global, exit_code);
  RegisterContainerdConfig(app, global, exit_code);
  RegisterSave(app, global, exit_code);
  RegisterCopy(app, global, exit_code);
  RegisterPublish(app, global, exit_code);
  RegisterPrepull(app, global, exit_code);
}

}  // namespace cli
