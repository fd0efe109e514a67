// The Debian package (cmake/package.cmake): cpack makes it from this build
// tree (what is already built; nothing is rebuilt), then the .deb is read
// (control fields, contents), its Depends checked against the libraries
// its executables link, and its gantry run from a fresh root that holds
// only the package's files and the host's /usr/lib (read-only bind mounts
// in a private mount namespace, so nothing is left mounted). One test,
// Package.BuildsChecksInstallsAndRuns, its checks in the order below.
// Needs root (mount, chroot).

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/fs.h"
#include "fixtures/process.h"

#ifndef GANTRY_LAZY_LIBRARIES
#error "GANTRY_LAZY_LIBRARIES must list the libraries gantry loads with dlopen()"
#endif
#ifndef GANTRY_CPACK
#error "GANTRY_CPACK must name the cpack executable"
#endif

namespace {

namespace fs = std::filesystem;

fixtures::CommandResult Cmd(const std::vector<std::string>& argv) {
  auto r = fixtures::RunCommand(argv);  // killed after RunOptions' default 2 minutes
  EXPECT_TRUE(r) << r.error().message;
  return r ? *r : fixtures::CommandResult{};
}

class Package : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = common::TempDir::Create("gantry-package");
    ASSERT_TRUE(dir) << dir.error().message;
    dir_ = new common::TempDir(std::move(*dir));
    auto r = Cmd({GANTRY_CPACK, "-G", "DEB", "--config",
                  (fs::path(GANTRY_BINARY_DIR) / "CPackConfig.cmake").string(), "-B",
                  (dir_->path() / "out").string()});
    log_ = r.out + r.err;
    auto version = Cmd({(fs::path(GANTRY_BINARY_DIR) / "src/cli/gantry").string(), "--version"});
    version_ = version.out.substr(version.out.find(' ') + 1);
    while (!version_.empty() && version_.back() == '\n') version_.pop_back();
    deb_ = dir_->path() / "out" / ("gantry_" + version_ + "_amd64.deb");
    if (r.exit_code != 0 || !fs::exists(deb_)) return;
    auto x = Cmd({"dpkg", "-x", deb_.string(), (dir_->path() / "pkg").string()});
    if (x.exit_code == 0) extracted_ = dir_->path() / "pkg";
    log_ += x.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_FALSE(extracted_.empty()) << deb_ << "\n" << log_; }

  static std::string Field(const std::string& name) {
    auto r = Cmd({"dpkg-deb", "-f", deb_.string(), name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string v = r.out;
    while (!v.empty() && v.back() == '\n') v.pop_back();
    return v;
  }

  // The checks, run by the one test below.
  void ControlFieldsNameThePackage();
  void DependsCoversEveryLinkedLibrary();
  void InstallsEverythingUnderUsr();
  void InstalledPageRendersAndCompletionParses();
  void InstalledGantryRunsInAFreshRoot();

  static inline common::TempDir* dir_ = nullptr;
  static inline fs::path deb_, extracted_;
  static inline std::string version_, log_;
};

void Package::ControlFieldsNameThePackage() {
  EXPECT_EQ(Field("Package"), "gantry");
  EXPECT_EQ(Field("Version"), version_);
  EXPECT_EQ(Field("Architecture"), "amd64");
  EXPECT_FALSE(Field("Maintainer").empty());
  EXPECT_FALSE(Field("Description").empty());
}

// Every shared library an executable of the package links (NEEDED) or
// gantry loads at first use (dlopen) is owned by a Debian package that
// Depends names.
void Package::DependsCoversEveryLinkedLibrary() {
  const std::string depends = Field("Depends");
  ASSERT_NE(depends.find("libc6"), std::string::npos) << depends;
  const std::string script = R"sh(
set -eu
# The libraries gantry loads with dlopen() at first use: not NEEDED, but
# Depends must name them all the same.
IFS=':' read -ra lazy <<<"$3"
for path in "${lazy[@]}"; do
  owner=$(dpkg -S "$path" 2>/dev/null || dpkg -S "${path#/usr}" 2>/dev/null || true)
  [ -n "$owner" ] || { echo "$path (dlopen): no package owns it"; exit 1; }
  echo "$(basename "$path") ${owner%%:*}"
done
for exe in "$1"/usr/bin/*; do
  # "libc.so.6 => /lib/…/libc.so.6 (0x…)", and the loader as "/lib64/ld-linux-x86-64.so.2 (0x…)".
  ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }
                    $1 ~ /^\// { n = split($1, p, "/"); print p[n], $1 }' >"$2/ldd.map"
  for lib in $(readelf -d "$exe" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    path=$(awk -v l="$lib" '$1 == l { print $2 }' "$2/ldd.map")
    [ -n "$path" ] || { echo "$exe: $lib not found"; exit 1; }
    owner=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null ||
            dpkg -S "/usr$path" 2>/dev/null || dpkg -S "${path#/usr}" 2>/dev/null || true)
    [ -n "$owner" ] || {
    echo "$exe: $lib ($path): no package owns it";
    exit 1;
  }
    echo "$lib ${owner%%:*}"
  done
done
)sh";
  auto r = Cmd({"bash", "-c", script, "bash", extracted_.string(), dir_->path().string(),
                GANTRY_LAZY_LIBRARIES});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // "a (>= 1), b | c, d": the names a, b, c and d.
  std::set<std::string> names;
  std::istringstream fields(depends);
  for (std::string f; std::getline(fields, f, ',');) {
    std::istringstream alternatives(f);
    for (std::string a; std::getline(alternatives, a, '|');) {
      std::istringstream words(a);
      std::string name;
      words >> name;
      names.insert(name);
    }
  }
  std::istringstream in(r.out);
  std::string lib, owner;
  int checked = 0;
  while (in >> lib >> owner) {
    ++checked;
    EXPECT_TRUE(names.count(owner))
        << lib << " comes from " << owner << ", which Depends does not name: " << depends;
  }
  EXPECT_GT(checked, 3) << r.out;
}

void Package::InstallsEverythingUnderUsr() {
  const fs::path usr = extracted_ / "usr";
  for (const char* f :
       {"bin/gantry", "bin/gantry-serve", "bin/gantry-runtime", "lib/systemd/system/gantry.service",
        "lib/systemd/system/gantry.socket", "share/man/man1/gantry.1.gz",
        "share/man/man1/gantry-pull.1.gz", "share/man/man1/gantry-snapshot-ls.1.gz",
        "share/man/man1/gantry-runtime.1.gz", "share/bash-completion/completions/gantry",
        "share/zsh/vendor-completions/_gantry", "share/doc/gantry/README.md"})
    EXPECT_TRUE(fs::exists(usr / f)) << f;
  auto unit = common::ReadFile(usr / "lib/systemd/system/gantry.service");
  ASSERT_TRUE(unit) << unit.error().message;
  EXPECT_NE(unit->find("ExecStart=/usr/bin/gantry "), std::string::npos) << *unit;
  // Nothing outside /usr.
  for (const auto& e : fs::directory_iterator(extracted_))
    EXPECT_EQ(e.path().filename(), "usr") << e.path();
}

void Package::InstalledPageRendersAndCompletionParses() {
  auto man = Cmd({"sh", "-c", "MANWIDTH=80 man -l \"$1\"", "sh",
                  (extracted_ / "usr/share/man/man1/gantry-pull.1.gz").string()});
  EXPECT_EQ(man.exit_code, 0) << man.err;
  EXPECT_NE(man.out.find("gantry-pull"), std::string::npos) << man.out;
  auto bash =
      Cmd({"bash", "-n", (extracted_ / "usr/share/bash-completion/completions/gantry").string()});
  EXPECT_EQ(bash.exit_code, 0) << bash.err;
}

// A root holding the package's /usr/bin and /usr/share and the host's
// /usr/lib and /usr/lib64 (the libraries Depends names), read-only: the
// installed gantry runs from there, so a file or a library the package
// needs and does not carry (or depend on) fails here.
void Package::InstalledGantryRunsInAFreshRoot() {
  const std::string script = R"sh(
set -eu
pkg=$1 root=$2
mkdir -p "$root/usr/bin" "$root/usr/share" "$root/usr/lib" "$root/usr/lib64" "$root/tmp"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
for d in usr/bin usr/share; do
  mount --bind "$pkg/$d" "$root/$d" && mount -o remount,bind,ro "$root/$d"
done
for d in usr/lib usr/lib64; do
  mount --bind "/$d" "$root/$d" && mount -o remount,bind,ro "$root/$d"
done
echo "== version"; chroot "$root" /usr/bin/gantry --version
echo "== help"; chroot "$root" /usr/bin/gantry help
echo "== runtime"; chroot "$root" /usr/bin/gantry-runtime --version
)sh";
  auto r = Cmd({"unshare", "--mount", "--propagation", "private", "bash", "-c", script, "bash",
                extracted_.string(), (dir_->path() / "root").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("gantry " + version_), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Subcommands:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pull"), std::string::npos) << r.out;
}

// One test, so that a ctest run (a process per test) makes one package.
TEST_F(Package, BuildsChecksInstallsAndRuns) {
  {
    SCOPED_TRACE("ControlFieldsNameThePackage");
    ControlFieldsNameThePackage();
  }
  {
    SCOPED_TRACE("DependsCoversEveryLinkedLibrary");
    DependsCoversEveryLinkedLibrary();
  }
  {
    SCOPED_TRACE("InstallsEverythingUnderUsr");
    InstallsEverythingUnderUsr();
  }
  {
    SCOPED_TRACE("InstalledPageRendersAndCompletionParses");
    InstalledPageRendersAndCompletionParses();
  }
  {
    SCOPED_TRACE("InstalledGantryRunsInAFreshRoot");
    InstalledGantryRunsInAFreshRoot();
  }
}

}  // namespace
