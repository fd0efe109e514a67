# shellcheck shell=bash
# Helpers shared by scripts/demo.sh and bench/ (sourced, not run).

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
