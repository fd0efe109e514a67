#!/usr/bin/env bash
# Installs every Debian package that gantry's build, tests, demo and
# benchmarks need. Idempotent: a machine that has them all gets no apt run.
# Quiet on success; on failure prints apt's output and exits non-zero.
set -euo pipefail

PACKAGES=(
  # build
  build-essential binutils cmake ninja-build pkg-config git
  libcurl4-openssl-dev libssl-dev libarchive-dev libzstd-dev zlib1g-dev libisal-dev
  nlohmann-json3-dev libsqlite3-dev libcli11-dev libtomlplusplus-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libmicrohttpd-dev  # the registry door (src/mirror/)
  libyaml-dev  # registries.d (src/trust/)
  libgpgme-dev  # GPG simple-signing verification (src/trust/gpg_verify.cc)
  libcap-dev libseccomp-dev
  libgtest-dev libgmock-dev
  # the source format (.clang-format, checked by the unit test FormatCheck)
  clang-format-14
  # fuzzing (scripts/fuzz.sh): clang-14's libFuzzer engine, found through clang-14
  clang-14 libclang-rt-14-dev
  # real peers and test tools
  docker-registry skopeo umoci runc crun containerd busybox-static
  gnupg  # gpg, gpgconf: the trust tests make keys and signatures (and libgpgme runs gpg)
  stargz-snapshotter  # ctr-remote: containerd's remote-snapshot pull path (snapshotter door tests)
  openssl apache2-utils python3 python3-grpcio python3-grpc-tools
  hyperfine debootstrap zstd pigz time util-linux e2fsprogs iproute2 procps curl
  prometheus  # promtool: the metrics tests check the /metrics scrape (promtool check metrics)
  strace  # bench/containerd.sh: the registries' system calls during a fetch
  systemd  # systemd-socket-activate: the CRI socket-activation test
  dpkg-dev man-db zsh  # the .deb: cpack's dpkg-shlibdeps; the package tests render a page (man -l) and check the zsh completion
)
# kubectl: the manifests test reads contrib/kubernetes/ with it (no cluster
# needed). Debian's is kubernetes-client; a machine where another package
# (Google's `kubectl`) already provides /usr/bin/kubectl keeps that one, as
# the two packages cannot both own the file.
command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi

log=$(mktemp /tmp/gantry-setup.XXXXXX.log)
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup.sh: apt-get failed installing: ${missing[*]} (log: $log)" >&2
  exit 1
fi
# docker-registry and containerd ship systemd units that may auto-start on
# some machines; our tests start their own instances on free ports.
rm -f "$log"
