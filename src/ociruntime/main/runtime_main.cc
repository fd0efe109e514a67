// gantry-runtime: the OCI runtime with runc's command line. Small on
// purpose: it links the runtime library, common and libcap only.

#include <string>
#include <vector>

#include "ociruntime/runtime_cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return ociruntime::RuntimeMain(args, "gantry-runtime");
}
