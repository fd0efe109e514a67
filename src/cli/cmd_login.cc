// gantry login / logout: credentials in docker's config.json (or the
// configured credential helper), the way `docker login` stores them.

#include <unistd.h>

#include <iostream>
#include <string>

#include "cli/commands.h"
#include "registry/credentials.h"
#include "registry/reference.h"

namespace cli {
namespace {

struct LoginFlags {
  std::string server;
  std::string username;
  std::string password;
  bool password_stdin = false;
};

// "docker.io" for Docker Hub aliases; a host otherwise.
std::string ServerKey(const std::string& s) {
  std::string h = s;
  for (const char* p : {"https://", "http://"})
    if (h.starts_with(p)) h = h.substr(std::string_view(p).size());
  if (auto slash = h.find('/'); slash != std::string::npos) h = h.substr(0, slash);
  return h;
}

int RunLogin(const LoginFlags& f) {
  registry::Credentials c;
  c.username = f.username;
  if (f.password_stdin) {
    std::getline(std::cin, c.password);
  } else {
    c.password = f.password;
  }
  if (c.username.empty() || c.password.empty()) {
    std::cerr << "gantry: login " << f.server
              << ": --username and --password (or --password-stdin) are required\n";
    return kExitUsage;
  }
  registry::CredentialStore store;
  if (auto st = store.Login(ServerKey(f.server), c); !st) return ReportError(st.error());
  std::cout << "Login Succeeded\n";
  return kExitOk;
}

int RunLogout(const std::string& server) {
  registry::CredentialStore store;
  if (auto st = store.Logout(ServerKey(server)); !st) return ReportError(st.error());
  std::cout << "Removing login credentials for " << ServerKey(server) << "\n";
  return kExitOk;
}

}  // namespace

void RegisterLogin(CLI::App& app, GlobalOptions& /*global*/, int& exit_code) {
  auto f = std::make_shared<LoginFlags>();
  auto* login = app.add_subcommand(
      "login", "Store registry credentials in $DOCKER_CONFIG/config.json (or a credential helper)");
  login->add_option("server", f->server, "Registry host, e.g. 127.0.0.1:5000 or docker.io")
      ->required();
  login->add_option("--username,-u", f->username, "User name");
  login->add_option("--password,-p", f->password, "Password (prefer --password-stdin)");
  login->add_flag("--password-stdin", f->password_stdin, "Read the password from stdin");
  login->callback([&exit_code, f] { exit_code = RunLogin(*f); });

  auto server = std::make_shared<std::string>();
  auto* logout = app.add_subcommand("logout", "Remove stored registry credentials");
  logout->add_option("server", *server, "Registry host")->required();
  logout->callback([&exit_code, server] { exit_code = RunLogout(*server); });
}

}  // namespace cli
