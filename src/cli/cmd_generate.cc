// gantry __generate man|bash|zsh DIR: the man pages and the shell
// completions, written from the command line's own definitions (the CLI11
// tree that main builds: every subcommand, however nested, its
// description, options and positionals) and from gantry-runtime's usage
// text. The build runs it (target `docs`, cmake/docs.cmake), so a command
// added anywhere gets its page and completion with no list to keep. Hidden:
// not a user command. A subcommand without a description is an error, so
// that the build fails rather than ship an empty page.
//
// Man pages: gantry.1, gantry-CMD.1, gantry-CMD-SUB.1 for nested ones, and
// gantry-runtime.1 (its commands as one section). Completions: DIR/gantry
// (bash) and DIR/_gantry (zsh).

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "ociruntime/runtime_cli.h"

namespace cli {
namespace {

namespace fs = std::filesystem;

// One command of the tree, flattened: its words after `gantry`.
struct Command {
  std::vector<std::string> words;  // {} for gantry itself, {"snapshot", "ls"}
  CLI::App* app = nullptr;
};

std::string Join(const std::vector<std::string>& words, const std::string& sep) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : sep) + w;
  return out;
}

bool Visible(const CLI::App* app) { return !app->get_group().empty(); }

std::vector<CLI::App*> Children(CLI::App* app) {
  return app->get_subcommands([](CLI::App* c) { return Visible(c); });
}

void Collect(CLI::App* app, std::vector<std::string> words, std::vector<Command>& out) {
  out.push_back({words, app});
  for (CLI::App* c : Children(app)) {
    auto sub = words;
    sub.push_back(c->get_name());
    Collect(c, sub, out);
  }
}

std::vector<const CLI::Option*> Flags(const CLI::App* app) {
  return app->get_options(
      [](const CLI::Option* o) { return o->nonpositional() && !o->get_group().empty(); });
}

std::vector<const CLI::Option*> Positionals(const CLI::App* app) {
  return app->get_options([](const CLI::Option* o) { return !o->nonpositional(); });
}

std::vector<std::string> Names(const CLI::Option* o) {
  std::vector<std::string> names;
  for (const auto& s : o->get_snames()) names.push_back("-" + s);
  for (const auto& l : o->get_lnames()) names.push_back("--" + l);
  return names;
}

// Flags expect no value (CLI11: expected 0), options at least one.
bool TakesValue(const CLI::Option* o) { return o->get_expected_max() > 0; }

// Whether the option's value is a file or directory, for file completion.
// CLI11 reports a std::filesystem::path as TEXT, so the name decides: the
// options that take paths are named for what they point at, in one of the
// dash-separated words of the name (--root, --registry-config, --certs-dir,
// --pid-file; not --allow-link-local-redirects).
bool PathLike(const CLI::Option* o) {
  if (!TakesValue(o)) return false;
  static const char* const kWords[] = {"root",   "config", "file",   "dir",  "socket",
                                       "output", "input",  "bundle", "path", "layout"};
  for (const auto& l : o->get_lnames()) {
    std::istringstream parts(l);
    for (std::string part; std::getline(parts, part, '-');)
      for (const char* w : kWords)
        if (part == w) return true;
  }
  for (const auto& s : o->get_snames())
    if (s == "o" || s == "i") return true;
  return false;
}

// The global options: those of the top level, accepted after any
// subcommand too (fallthrough, AddGlobalOptions).
std::vector<const CLI::Option*> GlobalFlags(const CLI::App* top) {
  std::vector<const CLI::Option*> out;
  for (const CLI::Option* o : Flags(top))
    if (TakesValue(o)) out.push_back(o);
  return out;
}

// ---- man pages (roff, man(7) macros) ----

std::string Roff(const std::string& text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    if (c == '\\')
      out += "\\e";
    else if (c == '-')
      out += "\\-";
    else
      out += c;
    line_start = c == '\n';
  }
  return out;
}

void WriteOption(std::ostream& m, const CLI::Option* o) {
  m << ".TP\n";
  std::string names;
  for (const auto& n : Names(o)) names += (names.empty() ? "" : ", ") + ("\\fB" + Roff(n) + "\\fR");
  m << names;
  if (TakesValue(o)) m << " \\fI" << Roff(o->get_type_name()) << "\\fR";
  m << "\n" << Roff(o->get_description());
  if (!o->get_default_str().empty()) m << " (default: " << Roff(o->get_default_str()) << ")";
  m << "\n";
}

std::string PageName(const Command& c) {
  return c.words.empty() ? "gantry" : "gantry-" + Join(c.words, "-");
}

void WriteManPage(const fs::path& dir, const Command& c, const CLI::App* top) {
  const std::string name = PageName(c);
  std::ofstream m(dir / (name + ".1"));
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  m << ".TH " << Roff(upper) << " 1 \"\" \"gantry " << Version() << "\" \"gantry manual\"\n";
  // "gantry: daemonless …" (the top's description) without its own name.
  std::string what = c.app->get_description();
  if (what.rfind(name + ": ", 0) == 0) what.erase(0, name.size() + 2);
  m << ".SH NAME\n" << Roff(name) << " \\- " << Roff(what) << "\n";
  m << ".SH SYNOPSIS\n.B gantry" << (c.words.empty() ? "" : " " + Roff(Join(c.words, " ")))
    << "\n[\\fIOPTIONS\\fR]";
  // A command with both (bundle: `bundle REF DIR`, `bundle rm DIR`) takes
  // one of its subcommands or its own arguments.
  if (!Children(c.app).empty())
    m << (Positionals(c.app).empty() ? " \\fICOMMAND\\fR" : " [\\fICOMMAND\\fR]");
  for (const CLI::Option* p : Positionals(c.app))
    m << " " << (p->get_required() ? "" : "[") << "\\fI" << Roff(p->get_name()) << "\\fR"
      << (p->get_expected_max() > 1 ? "..." : "") << (p->get_required() ? "" : "]");
  if (c.app->get_prefix_command()) m << " [\\fIARGS\\fR...]";
  m << "\n.SH DESCRIPTION\n" << Roff(what) << "\n";
  if (c.app->get_prefix_command())
    m << ".PP\nEverything after the command is passed to it unparsed; see "
         "\\fBgantry\\-runtime\\fR(1).\n";
  if (!Positionals(c.app).empty()) {
    m << ".SH ARGUMENTS\n";
    for (const CLI::Option* p : Positionals(c.app))
      m << ".TP\n\\fI" << Roff(p->get_name()) << "\\fR\n" << Roff(p->get_description()) << "\n";
  }
  if (!Flags(c.app).empty()) {
    m << ".SH OPTIONS\n";
    for (const CLI::Option* o : Flags(c.app)) WriteOption(m, o);
  }
  if (!c.words.empty() && !c.app->get_prefix_command()) {
    m << ".SH GLOBAL OPTIONS\nAccepted before or after the command; see \\fBgantry\\fR(1).\n";
    for (const CLI::Option* o : GlobalFlags(top)) WriteOption(m, o);
  }
  std::vector<std::string> see;
  if (!Children(c.app).empty()) {
    m << ".SH COMMANDS\n";
    for (CLI::App* s : Children(c.app)) {
      m << ".TP\n\\fB" << Roff(s->get_name()) << "\\fR\n" << Roff(s->get_description()) << "\n";
      auto w = c.words;
      w.push_back(s->get_name());
      see.push_back("gantry-" + Join(w, "-"));
    }
  }
  if (!c.app->get_footer().empty())
    m << ".SH NOTES\n.nf\n" << Roff(c.app->get_footer()) << "\n.fi\n";
  if (c.words.empty()) see.push_back("gantry-runtime");
  if (!c.words.empty()) see.insert(see.begin(), "gantry");
  m << ".SH SEE ALSO\n";
  for (size_t i = 0; i < see.size(); ++i)
    m << "\\fB" << Roff(see[i]) << "\\fR(1)" << (i + 1 < see.size() ? ",\n" : "\n");
}

// gantry-runtime's commands: the lines of its usage that start with two
// spaces and a lower-case word ("  kill [--all] ID [SIGNAL]"; "pause ID |
// resume ID" names two).
std::vector<std::string> RuntimeCommands(const std::string& usage) {
  std::vector<std::string> cmds;
  std::istringstream in(usage);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 3 || line.compare(0, 2, "  ") != 0 || !std::islower(line[2])) continue;
    std::istringstream words(line);
    std::string w;
    bool next_is_command = true;
    while (words >> w) {
      if (next_is_command) cmds.push_back(w);
      next_is_command = w == "|";
    }
  }
  return cmds;
}

void WriteRuntimeManPage(const fs::path& dir) {
  std::ofstream m(dir / "gantry-runtime.1");
  const std::string usage = ociruntime::RuntimeUsage("gantry-runtime");
  m << ".TH GANTRY\\-RUNTIME 1 \"\" \"gantry " << Version() << "\" \"gantry manual\"\n"
    << ".SH NAME\ngantry\\-runtime \\- OCI runtime with runc's command line\n"
    << ".SH SYNOPSIS\n.nf\n"
    << Roff(usage.substr(0, usage.find('\n'))) << "\n.fi\n"
    << ".SH DESCRIPTION\nThe built\\-in OCI runtime, also run as \\fBgantry runtime\\fR. It "
       "takes runc's commands and flags, as containerd's shim calls them. Exit status: 0, 1 on "
       "any error, or the container's status for a foreground \\fBrun\\fR.\n"
    << ".SH COMMANDS\n.nf\n"
    << Roff(usage.substr(usage.find("commands:\n") + 10)) << ".fi\n"
    << ".SH SEE ALSO\n\\fBgantry\\fR(1), \\fBgantry\\-bundle\\fR(1)\n";
}

// ---- completions ----

// Shell words, single-quoted.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct Spec {
  std::vector<std::pair<std::string, std::string>> subs;  // name, description
  std::vector<std::pair<std::string, std::string>> opts;  // name, description
  std::vector<std::string> value_opts, path_opts;
};

Spec SpecOf(const Command& c, const CLI::App* top) {
  Spec s;
  for (CLI::App* sub : Children(c.app)) s.subs.push_back({sub->get_name(), sub->get_description()});
  if (c.app->get_prefix_command())
    for (const auto& r : RuntimeCommands(ociruntime::RuntimeUsage("gantry-runtime")))
      s.subs.push_back({r, "gantry-runtime " + r});
  auto flags = Flags(c.app);
  if (!c.words.empty() && !c.app->get_prefix_command())
    for (const CLI::Option* g : GlobalFlags(top)) flags.push_back(g);
  for (const CLI::Option* o : flags)
    for (const auto& n : Names(o)) {
      s.opts.push_back({n, o->get_description()});
      if (TakesValue(o)) s.value_opts.push_back(n);
      if (PathLike(o)) s.path_opts.push_back(n);
    }
  return s;
}

std::string Words(const std::vector<std::pair<std::string, std::string>>& v) {
  std::vector<std::string> w;
  for (const auto& p : v) w.push_back(p.first);
  return Join(w, " ");
}

void WriteBash(const fs::path& file, const std::vector<Command>& all, const CLI::App* top) {
  std::ofstream b(file);
  b << "# bash completion for gantry, generated by `gantry __generate bash` from its command "
       "line.\n"
    << "__gantry_spec() {\n  case \"$1\" in\n";
  for (const Command& c : all) {
    Spec s = SpecOf(c, top);
    b << "    " << Quote(Join(c.words, " ")) << ")\n"
      << "      subs=" << Quote(Words(s.subs)) << "; opts=" << Quote(Words(s.opts))
      << "; valopts=" << Quote(Join(s.value_opts, " "))
      << "; fileopts=" << Quote(Join(s.path_opts, " ")) << " ;;\n";
  }
  b << "    *) subs=''; opts=''; valopts=''; fileopts='' ;;\n  esac\n}\n"
    << R"(__gantry_has() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }
_gantry() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local cmdpath="" subs opts valopts fileopts i w
  __gantry_spec ""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if __gantry_has "$valopts" "$w"; then ((i++)); continue; fi
    if [[ $w != -* ]] && __gantry_has "$subs" "$w"; then
      cmdpath=${cmdpath:+$cmdpath }$w
      __gantry_spec "$cmdpath"
    fi
  done
  if __gantry_has "$fileopts" "$prev"; then
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  elif __gantry_has "$valopts" "$prev"; then
    COMPREPLY=()
  elif [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
  elif [[ -n $subs ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
}
complete -F _gantry gantry
)";
}

std::string ZshArray(const std::vector<std::pair<std::string, std::string>>& v) {
  std::vector<std::string> w;
  for (const auto& [name, desc] : v) {
    std::string d = desc.substr(0, desc.find('\n'));
    w.push_back(Quote(name + ":" + d));
  }
  return "(" + Join(w, " ") + ")";
}

std::string ZshWords(const std::vector<std::string>& v) {
  std::vector<std::string> w;
  for (const auto& s : v) w.push_back(Quote(s));
  return "(" + Join(w, " ") + ")";
}

void WriteZsh(const fs::path& file, const std::vector<Command>& all, const CLI::App* top) {
  std::ofstream z(file);
  z << "#compdef gantry\n"
       "# zsh completion for gantry, generated by `gantry __generate zsh` from its command "
       "line.\n"
    << "__gantry_spec() {\n  case \"$1\" in\n";
  for (const Command& c : all) {
    Spec s = SpecOf(c, top);
    std::vector<std::string> names;
    for (const auto& p : s.subs) names.push_back(p.first);
    z << "    " << Quote(Join(c.words, " ")) << ")\n"
      << "      subs=" << ZshArray(s.subs) << "\n      subnames=" << ZshWords(names)
      << "\n      opts=" << ZshArray(s.opts) << "\n      valopts=" << ZshWords(s.value_opts)
      << "\n      fileopts=" << ZshWords(s.path_opts) << " ;;\n";
  }
  z << "    *) subs=(); subnames=(); opts=(); valopts=(); fileopts=() ;;\n  esac\n}\n"
    << R"(_gantry() {
  local cmdpath="" w prev i
  local -a subs subnames opts valopts fileopts
  __gantry_spec ""
  for ((i = 2; i < CURRENT; i++)); do
    w=${words[i]}
    if (( ${valopts[(Ie)$w]} )); then ((i++)); continue; fi
    if [[ $w != -* ]] && (( ${subnames[(Ie)$w]} )); then
      cmdpath=${cmdpath:+$cmdpath }$w
      __gantry_spec "$cmdpath"
    fi
  done
  prev=${words[CURRENT-1]}
  if (( ${fileopts[(Ie)$prev]} )); then _files; return; fi
  if (( ${valopts[(Ie)$prev]} )); then _message value; return; fi
  if [[ ${words[CURRENT]} == -* ]]; then _describe -t options option opts; return; fi
  if (( ${#subs} )); then _describe -t commands command subs; else _files; fi
}
_gantry "$@"
)";
}

int Generate(CLI::App& top, const std::string& what, const fs::path& dir) {
  std::vector<Command> all;
  Collect(&top, {}, all);
  for (const Command& c : all)
    if (c.app->get_description().empty()) {
      std::cerr << "gantry: __generate: command `" << Join(c.words, " ")
                << "` has no description\n";
      return kExitUsage;
    }
  // --root's default is the generating user's (DefaultRoot); the page is
  // for every user, so it states the rule instead.
  if (CLI::Option* root = top.get_option_no_throw("--root"); root != nullptr)
    root->default_str(
        "/var/lib/gantry as root, else $XDG_DATA_HOME/gantry or ~/.local/share/gantry");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    std::cerr << "gantry: __generate: create `" << dir.string() << "`: " << ec.message() << "\n";
    return kExitFailure;
  }
  if (what == "man") {
    for (const Command& c : all) WriteManPage(dir, c, &top);
    // `gantry runtime` is gantry-runtime: its page is the runtime's own,
    // which replaces the one the loop wrote for the subcommand.
    WriteRuntimeManPage(dir);
  } else if (what == "bash") {
    WriteBash(dir / "gantry", all, &top);
  } else {
    WriteZsh(dir / "_gantry", all, &top);
  }
  return kExitOk;
}

}  // namespace

void RegisterGenerate(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("__generate", "Write the man pages or shell completions");
  cmd->group("");  // hidden: for the build (cmake/docs.cmake)
  auto what = std::make_shared<std::string>();
  auto dir = std::make_shared<std::string>();
  cmd->add_option("what", *what, "man, bash or zsh")
      ->required()
      ->check(CLI::IsMember({"man", "bash", "zsh"}));
  cmd->add_option("dir", *dir, "Output directory")->required();
  cmd->callback([&app, &exit_code, what, dir] { exit_code = Generate(app, *what, *dir); });
}

}  // namespace cli
