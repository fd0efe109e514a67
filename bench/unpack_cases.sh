# shellcheck shell=bash
# The cases of issue 21, sourced by bench/unpack.sh CASE… after its
# containerd set-up (stop_containerd, $CTRD/restart.sh): per case, cold
# pulls by gantry, by GANTRY_BEFORE (if set), by containerd and by
# skopeo+umoci (gzip layers only: umoci cannot unpack zstd), RUNS each
# (BIG_RUNS for big-*), then the machine's bound in the same run
# (bench_limits). Writes the section "Big layers in one pass (issue 21)".
BIG_RUNS=${BIG_RUNS:-$RUNS}
GANTRY_BEFORE=${GANTRY_BEFORE:-}
# The peers to run beside gantry (PEERS= for gantry, before and the bound only).
PEERS=${PEERS-containerd skopeo+umoci}
if [ -n "$GANTRY_BEFORE" ] && [ ! -x "$GANTRY_BEFORE" ]; then
  bench_die "GANTRY_BEFORE=$GANTRY_BEFORE is not an executable"
fi
command -v igzip >/dev/null || bench_die "igzip (package isal) is missing"

bench_step "images: ${CASES[*]}"
LAYOUT="$WORK/layout"
for c in "${CASES[@]}"; do bench_case_image "$LAYOUT" "$c" >"$WORK/$c.env"; done

bench_step "scratch file system (journaled ext4 on a loop device)"
big=0
for c in "${CASES[@]}"; do case "$c" in big-*) big=1 ;; esac; done
if [ "$big" = 1 ]; then bench_scratch_fs "${SCRATCH_SIZE:-16G}"; else bench_scratch_fs "${SCRATCH_SIZE:-4G}"; fi

bench_step "registry"
registry_start "$WORK"
declare -A REF
for c in "${CASES[@]}"; do REF[$c]=$(registry_push "$LAYOUT" "$c" "bench/$c:latest"); done
"$CTRD/restart.sh"

STORE="$MNT/gantry"
STORE_BEFORE="$MNT/gantry-before"
STORE_USED="$MNT/gantry-used"
OCI="$MNT/oci"
BUNDLE="$MNT/bundle"
# Every tool's store is removed after its runs: a 2 GiB case leaves ~3 GiB each.
CLEAN="rm -rf $STORE $STORE_BEFORE $STORE_USED $OCI $BUNDLE $CTRD_ROOT && sync"
for c in "${CASES[@]}"; do
  ref=${REF[$c]}
  runs=$RUNS warm=1
  case "$c" in big-*) runs=$BIG_RUNS warm=0 ;; esac
  bench_step "$c: sanity (gantry prints the manifest digest)"
  sh -c "rm -rf $STORE && sync"
  got=$("$GANTRY" --root "$STORE" pull --plain-http --quiet "$ref")
  [ "$got" = "$(sed -n 's/^IMAGE_DIGEST=//p' "$WORK/$c.env")" ] || bench_die "gantry printed '$got' for $ref"
  sh -c "$CLEAN"
  # Each tool: a name, its prepare (which also removes what the tool run
  # before it left: the rounds change the order) and its command.
  wipe="rm -rf $STORE $STORE_BEFORE $CTRD_ROOT $OCI $BUNDLE"
  tools=(gantry "$wipe && sync" "$GANTRY --root $STORE pull --plain-http --quiet $ref")
  if [ -n "$GANTRY_BEFORE" ]; then
    tools+=("gantry before" "$wipe && sync" "$GANTRY_BEFORE --root $STORE_BEFORE pull --plain-http --quiet $ref")
  fi
  # (e) also into a store in use (as containerd's runs, whose daemon and
  # root exist before the timed pull): one that pulled the image before
  # and then removed it and pruned, so no blob or snapshot is left.
  if [ "$c" = busybox ]; then
    tools+=("gantry, store in use" "$wipe && $GANTRY --root $STORE_USED pull --plain-http --quiet $ref >/dev/null && $GANTRY --root $STORE_USED rmi $ref >/dev/null && $GANTRY --root $STORE_USED prune >/dev/null && sync"
            "$GANTRY --root $STORE_USED pull --plain-http --quiet $ref")
  fi
  case " $PEERS " in *" containerd "*)
    tools+=(containerd "rm -rf $STORE $STORE_BEFORE $OCI $BUNDLE && $CTRD/restart.sh"
            "ctr -a $CTRD_SOCK -n bench images pull --plain-http $ref") ;;
  esac
  case "$c: $PEERS " in
    *zstd:*) ;;  # umoci cannot unpack zstd layers
    *" skopeo+umoci "*)
      tools+=(skopeo+umoci "$wipe && sync"
              "sh -c 'skopeo copy --quiet --src-tls-verify=false docker://$ref oci:$OCI:img && umoci unpack --image $OCI:img $BUNDLE >/dev/null'") ;;
  esac
  # hyperfine runs every run of one tool, then the next tool's: on this
  # machine the speed drifts by several ms within a minute, which would
  # favour whichever tool ran in the quicker stretch. So the runs are split
  # into rounds, the tools' order reversed every round, and merged.
  rounds=$(( runs >= 4 ? 4 : runs ))
  per_round=$(( (runs + rounds - 1) / rounds ))
  bench_step "$c: hyperfine, $((rounds * per_round)) cold runs each in $rounds rounds of alternating order, warm-up $warm (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  round_jsons=()
  for r in $(seq 1 "$rounds"); do
    cmds=()
    n=$(( ${#tools[@]} / 3 ))
    for k in $(seq 0 $((n - 1))); do
      i=$(( r % 2 == 1 ? k : n - 1 - k ))
      cmds+=(-n "${tools[$((3 * i))]}" --prepare "${tools[$((3 * i + 1))]}" "${tools[$((3 * i + 2))]}")
    done
    round_jsons+=("$OUT_DIR/cases-$c-round$r.json")
    hyperfine --style basic --warmup "$warm" --runs "$per_round" --export-json "${round_jsons[-1]}" \
      "${cmds[@]}" >&2
  done
  bench_merge_rounds "$OUT_DIR/cases-$c.json" "${round_jsons[@]}"
  stop_containerd
  sh -c "$CLEAN"
  "$CTRD/restart.sh"
  bench_step "$c: the machine's bound, $runs runs (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  bench_limits "$LAYOUT" "$c" "bench/$c" "$runs" "$OUT_DIR/limits-$c.json"
  echo "$c: load after $(cut -d' ' -f1-3 /proc/loadavg)" >"$OUT_DIR/cases-$c.load"
done
stop_containerd

bench_step "summary"
SECTION="$WORK/section.md"
python3 - "$OUT_DIR" "$WORK" "$SECTION" "$(git describe --always --dirty 2>/dev/null || echo unknown)" \
  "$(uname -r)" "$(nproc)" "$(cat /proc/self/autogroup 2>/dev/null || echo none)" \
  "$GANTRY_BEFORE" "${CASES[@]}" <<'PY'
import json, os, sys

out_dir, work, section, commit, kernel, cpus, autogroup, before, *cases = sys.argv[1:]
TITLES = {"big-gzip": "(a) one big layer of /usr slices replicated, gzip",
          "big-zstd": "(b) the same, zstd",
          "usr-gzip": "(c) the 4-layer /usr image, gzip", "usr-zstd": "(c) the 4-layer /usr image, zstd",
          "small": "(d) 50k small files, one gzip layer", "busybox": "(e) busybox-like image"}
lines = ["## Big layers in one pass (issue 21)", "",
         f"`bench/unpack.sh {' '.join(cases)}` (gantry {commit}; Linux {kernel}, {cpus} CPUs; "
         f"scheduler: {autogroup.strip()}). Cold pulls (store deleted and synced before each run; "
         "containerd restarted on an empty root), every store on a fresh journaled ext4 loop mount "
         "(this machine's / is ext4 without a journal, where re-creating files right after deleting "
         "them is ~10x slower). \"before\" is `" + (before or "not run") + "`. The bound is measured "
         "in the same run by `bench_limits` (bench/limits.sh): each stage alone, the median over the "
         "same number of runs; bound = max(longest stage, sum of stages / CPUs).", ""]
lines += ["| case | MB packed / tar | gantry | before | containerd | skopeo+umoci | bound | "
          "gantry/before | gantry/bound | limited by | load |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
stage_rows = []
for c in cases:
    env = dict(l.strip().split("=", 1) for l in open(os.path.join(work, c + ".env")) if "=" in l)
    res = {r["command"]: r for r in json.load(open(os.path.join(out_dir, f"cases-{c}.json")))["results"]}
    lim = json.load(open(os.path.join(out_dir, f"limits-{c}.json")))
    med = lambda t: res[t]["median"] if t in res else None
    fmt = lambda v: f"{v:.3f} s" if v is not None else "n/a"
    g, b = med("gantry"), med("gantry before")
    runs = len(res["gantry"]["times"])
    load = open(os.path.join(out_dir, f"cases-{c}.load")).read().split("after ")[-1].strip()
    ratio = f"{g / b:.2f}" if b else "n/a"
    lines.append(f"| {c} ({runs} runs) | {int(env['IMAGE_PACKED'])/1e6:.0f} / {int(env['IMAGE_RAW'])/1e6:.0f} | "
                 f"{fmt(g)} | {fmt(b)} | {fmt(med('containerd'))} | {fmt(med('skopeo+umoci'))} | "
                 f"{fmt(lim['bound'])} | {ratio} | {g / lim['bound']:.2f} | {lim['limited_by']} | {load} |")
    used = med("gantry, store in use")
    if used is not None:
        lines.append(f"| {c}, gantry's store in use ({runs} runs) | | {fmt(used)} | | | | {fmt(lim['bound'])} | "
                     f"| {used / lim['bound']:.2f} | | |")
    cpu = {t: r["user"] + r["system"] for t, r in res.items()}
    stage_rows.append(f"| {c} | " + " | ".join(f"{v['wall']:.3f} / {v['cpu']:.3f}" for v in lim["stages"].values())
                      + f" | {cpu['gantry']:.2f} | " + (f"{cpu['gantry before']:.2f}" if "gantry before" in cpu else "n/a") + " |")
stages = list(lim["stages"].keys())
lines += ["", "Stages alone (wall s / CPU s, summed over the layers) and the tools' CPU (user+sys, mean of the runs):", "",
          "| case | " + " | ".join(stages) + " | gantry CPU | before CPU |",
          "| --- | " + " | ".join("---:" for _ in stages) + " | ---: | ---: |"] + stage_rows + [""]
open(section, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
if [ "$RESULTS" != none ]; then
  bench_write_section "$RESULTS" "$SECTION" "## Big layers in one pass (issue 21)"
  echo "written: $RESULTS (section \"Big layers in one pass (issue 21)\")" >&2
fi
echo "JSON: $OUT_DIR/cases-*.json $OUT_DIR/limits-*.json" >&2
