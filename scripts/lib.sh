# shellcheck shell=bash
# Helpers shared by scripts/demo.sh, scripts/package.sh and bench/ (sourced,
# not run).

REG_PID=""
REG_PORT=""

# registry_start DIR: Debian's docker-registry on a free 127.0.0.1 port,
# its config, storage and log under DIR; sets REG_PID and REG_PORT. The
# caller stops it (kill "$REG_PID") in its EXIT trap.
registry_start() {
  local dir=$1
  REG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$dir/registry.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/registry-data
http:
  addr: 127.0.0.1:$REG_PORT
YAML
  docker-registry serve "$dir/registry.yml" >"$dir/registry.log" 2>&1 &
  REG_PID=$!
  local _
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$REG_PORT/v2/" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$REG_PORT/v2/" >/dev/null
}

# registry_push LAYOUT TAG REPO:TAG: pushes an OCI layout's tag with skopeo
# into the registry of registry_start; prints the full reference.
registry_push() {
  local ref="127.0.0.1:$REG_PORT/$3"
  skopeo copy --quiet --dest-tls-verify=false "oci:$1:$2" "docker://$ref" >&2
  echo "$ref"
}

# build_step LOG TITLE COMMAND...: prints "== TITLE", runs COMMAND with its
# output appended to LOG and, for ninja's "[n/N] …" lines, prints a
# progress line at each tenth of the build. On failure prints the end of
# LOG and keeps it, and returns non-zero.
build_step() {
  local log=$1 title=$2 start=$SECONDS
  shift 2
  echo "== $title"
  # The command's own status, whatever the caller's errexit and pipefail.
  { if "$@" 2>&1; then echo 0 >"$log.rc"; else echo $? >"$log.rc"; fi; } | tee -a "$log" | awk '
      /^\[[0-9]+\/[0-9]+\]/ {
        split(substr($0, 2, index($0, "]") - 2), n, "/")
        tenth = int(n[1] * 10 / n[2])
        if (tenth > shown) { shown = tenth; printf "   %3d%%  [%d/%d]\n", tenth * 10, n[1], n[2]; fflush() }
      }'
  local rc
  rc=$(cat "$log.rc")
  rm -f "$log.rc"
  if [ "$rc" != 0 ]; then
    tail -n 30 "$log" >&2
    echo "failed (exit $rc): $title (whole log kept: $log)" >&2
    return 1
  fi
  echo "   done in $((SECONDS - start)) s"
}
