#pragma once
// runc's command line over ociruntime (runtime.h), shared by the
// `gantry-runtime` executable and `gantry runtime …`:
//
//   [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND …
//   create [--bundle B] [--pid-file F] [--console-socket S] [--no-pivot]
//          [--no-new-keyring] [--preserve-fds N] ID
//   start ID | state ID | kill [--all] ID [SIGNAL] | delete [--force] ID
//   run [--bundle B] [--detach] [--pid-file F] [--console-socket S] … ID
//   list [--format table|json] [--quiet] | ps [--format table|json] ID
//
// Flags take "--flag value", "--flag=value", or Go's single-dash forms.
// Errors go to stderr as one line and, with --log, to that file as a text
// or JSON line ({"level":"error","msg":…,"time":…}, the form containerd's
// shim reports). Exit status: 0, 1 on any error, or the container's status
// for a foreground `run`.

#include <string>
#include <string_view>
#include <vector>

namespace ociruntime {

// `args` excludes the program name; `prog` names it in messages.
[[nodiscard]] int RuntimeMain(const std::vector<std::string>& args, std::string_view prog);

// The usage text `prog --help` prints (the command list above), for the
// generated man page and completions (`gantry __generate`).
[[nodiscard]] std::string RuntimeUsage(std::string_view prog);

}  // namespace ociruntime
