#!/usr/bin/python3
"""The workload of bench/soak.sh, which sets up the registry, the fault
proxy and the store, then runs this (see soak.sh's header for the design).

Phases:
 1. For DURATION seconds: worker threads run `gantry pull`, `gantry rmi`,
    `gantry prune`, `gantry mount`/`umount` and CRI PullImage/RemoveImage
    (against a `gantry serve` this script starts and restarts), while a
    killer thread SIGKILLs random gantry processes this script started.
 2. Stop: every CLI process still running is SIGKILLed (counted as kills),
    views left by killed mounts are unmounted, `gantry serve` gets SIGTERM
    and must exit 0, the proxy gets SIGUSR1 (no more faults).
 3. Check: `gantry fsck` must exit 0; every image still tagged must pull
    again (through the proxy, which only forwards now) and mount, with its
    marker file in place; `gantry fsck` again.
 4. Print the counts; exit 1 when anything went really wrong.

A process is only ever signalled while it is known not to have been
reaped: workers wait with waitid(WNOWAIT), take it out of the table under
the lock, and only then reap it; the killer picks from that table under the
same lock. So a recycled PID is never hit.

What counts as a real failure (the soak fails):
  - a gantry process dying of a signal we did not send, or a sanitizer or
    `terminate called` report in its stderr;
  - an exit code the operation has no business returning (see EXPECTED),
    or a failure whose stderr is not exactly one "gantry: ..." line (log
    lines aside);
  - an operation still running after OP_TIMEOUT (stuck);
  - a CRI error with code INTERNAL or UNKNOWN, or a multi-line message;
  - `gantry serve` exiting when we did not kill it, or not exiting 0 on
    SIGTERM;
  - fsck reporting a problem; an image that no longer pulls or mounts.
Expected failures (faults, kills, races such as rmi of an image already
gone) are counted by class. Logs of every real failure are kept in
LOGS/failures/.
"""

import argparse
import collections
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

SANITIZER = re.compile(r"ERROR: (Address|Leak|Thread|Memory|UndefinedBehavior)Sanitizer|"
                       r"runtime error: |terminate called|Assertion .* failed|"
                       r"stack smashing detected|double free|free\(\): ")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (debug|info|warn|error) ")
# Exit codes (gantry help) an operation may return under faults and races,
# besides 0, with the class they are counted under.
EXPECTED = {
    # 8: the image was removed (rmi, prune --all) right after the pull recorded it.
    "pull": {5: "unavailable", 6: "data_loss", 8: "removed_meanwhile"},
    "rmi": {3: "not_found"},
    "prune": {},
    "mount": {3: "not_found"},
    "umount": {3: "not_a_mount"},
}
EXIT_NAMES = {1: "internal", 2: "usage", 3: "not_found", 4: "auth", 5: "unavailable",
              6: "data_loss", 7: "no_space", 8: "conflict", 130: "cancelled"}
# CRI status codes expected under faults and serve restarts.
CRI_EXPECTED = {"UNAVAILABLE", "DATA_LOSS", "DEADLINE_EXCEEDED", "CANCELLED", "ABORTED"}
OP_TIMEOUT = 300  # seconds; a CLI operation running longer is stuck


class Soak:
    def __init__(self, a):
        self.a = a
        self.markers = dict(i.split("=", 1) for i in a.images)
        self.refs = sorted(self.markers)
        self.rng = random.Random(a.seed)
        self.lock = threading.Lock()
        self.running = {}  # pid -> [Popen, kind, killed_by_us]; guarded by lock
        self.ops = collections.Counter()  # (kind, outcome) -> n
        self.failures = collections.Counter()  # (kind, class) -> n
        self.real = []  # descriptions of real failures
        self.kills = collections.Counter()  # kind -> n
        self.seconds = collections.defaultdict(list)  # kind -> durations of ok ops
        self.stop = threading.Event()
        self.serve = None  # Popen of the current gantry serve; guarded by lock
        self.serve_killed = False
        self.serve_starts = 0
        self.seq = 0
        os.makedirs(os.path.join(a.logs, "failures"), exist_ok=True)
        os.makedirs(os.path.join(a.work, "scratch"), exist_ok=True)

    # ---- bookkeeping ----------------------------------------------------

    def count(self, kind, outcome, klass=None, seconds=None):
        with self.lock:
            self.ops[(kind, outcome)] += 1
            if seconds is not None:
                self.seconds[kind].append(seconds)
            if klass:
                self.failures[(kind, klass)] += 1

    def real_failure(self, what, logs=()):
        with self.lock:
            self.seq += 1
            n = self.seq
        keep = os.path.join(self.a.logs, "failures", "%04d" % n)
        os.makedirs(keep)
        with open(os.path.join(keep, "what"), "w") as f:
            f.write(what + "\n")
        for name, text in logs:
            with open(os.path.join(keep, name), "w") as f:
                f.write(text)
        with self.lock:
            self.real.append("%s (%s)" % (what, keep))
        print("soak: REAL FAILURE: %s (logs: %s)" % (what, keep), file=sys.stderr, flush=True)

    def gantry_args(self, *args):
        return [self.a.gantry, "--root", self.a.root, "--log-level", "error", *args]

    # ---- running gantry -------------------------------------------------

    def run(self, kind, args, tag):
        """Runs one gantry command, registered for the killer. Returns
        (returncode, stdout, stderr, killed_by_us, seconds)."""
        out_path = os.path.join(self.a.work, "scratch", tag + ".out")
        err_path = os.path.join(self.a.work, "scratch", tag + ".err")
        start = time.monotonic()
        with open(out_path, "w") as out, open(err_path, "w") as err:
            with self.lock:
                p = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
                entry = [p, kind, False]
                self.running[p.pid] = entry
            stuck = not wait_exited(p, OP_TIMEOUT)
            if stuck:
                os.kill(p.pid, signal.SIGKILL)
                wait_exited(p)
            with self.lock:
                del self.running[p.pid]
            rc = p.wait()
        with open(out_path) as f:
            stdout = f.read()
        with open(err_path) as f:
            stderr = f.read()
        if stuck:
            self.real_failure("%s stuck for over %d s: %s" % (kind, OP_TIMEOUT, " ".join(args)),
                              [("stdout", stdout), ("stderr", stderr)])
            return None, stdout, stderr, False, 0
        return rc, stdout, stderr, entry[2], time.monotonic() - start

    def judge(self, kind, args, rc, stdout, stderr, killed, seconds):
        """Counts one CLI result; returns True when it succeeded."""
        if rc is None:  # stuck, already reported
            self.count(kind, "failed", "stuck")
            return False
        logs = [("command", " ".join(args) + "\n"), ("stdout", stdout), ("stderr", stderr)]
        if SANITIZER.search(stderr):
            self.count(kind, "failed", "crash_report")
            self.real_failure("%s: crash or sanitizer report (exit %d)" % (kind, rc), logs)
            return False
        if rc < 0:
            if rc == -signal.SIGKILL and killed:
                self.count(kind, "killed")
                return False
            self.count(kind, "failed", "signal_%s" % signal.Signals(-rc).name)
            self.real_failure("%s: died of %s" % (kind, signal.Signals(-rc).name), logs)
            return False
        if rc == 0:
            self.count(kind, "ok", seconds=seconds)
            return True
        errors = [l for l in stderr.splitlines() if l.strip() and not LOG_LINE.match(l)]
        if len(errors) != 1 or not errors[0].startswith("gantry: "):
            self.count(kind, "failed", "unclear_error")
            self.real_failure("%s: exit %d without exactly one `gantry: ...` error line" % (kind, rc),
                              logs)
            return False
        klass = EXPECTED[kind].get(rc)
        if klass is None:
            klass = "unexpected_" + EXIT_NAMES.get(rc, "exit%d" % rc)
            self.count(kind, "failed", klass)
            self.real_failure("%s: unexpected exit %d: %s" % (kind, rc, errors[0]), logs)
            return False
        self.count(kind, "failed", klass)
        return False

    def op(self, kind, args, tag):
        rc, out, err, killed, seconds = self.run(kind, args, tag)
        return self.judge(kind, args, rc, out, err, killed, seconds), out

    # ---- workers --------------------------------------------------------

    def pause(self, rng, lo, hi):
        self.stop.wait(rng.uniform(lo, hi))

    def pull_worker(self, wid, rng):
        while not self.stop.is_set():
            ref = rng.choice(self.refs)
            args = ["pull", "-q", "--plain-http", "--min-rate", "1024", "--min-rate-window", "5",
                    ref]
            if rng.random() < 0.2:
                args.insert(1, "--no-unpack")
            self.op("pull", self.gantry_args(*args), "pull%d" % wid)

    def rmi_worker(self, wid, rng):
        while not self.stop.is_set():
            self.pause(rng, 0.5, 2.0)
            self.op("rmi", self.gantry_args("rmi", rng.choice(self.refs)), "rmi%d" % wid)

    def prune_worker(self, wid, rng):
        while not self.stop.is_set():
            self.pause(rng, 1.0, 4.0)
            args = ["prune", "--all"] if rng.random() < 0.3 else ["prune"]
            self.op("prune", self.gantry_args(*args), "prune%d" % wid)

    def mount_dir(self, wid):
        return os.path.join(self.a.work, "mnt%d" % wid)

    def ensure_unmounted(self, wid):
        """Undoes whatever a killed mount or umount left: `gantry umount`
        until it succeeds or says there is no mount. Returns False when
        the soak is stopping before that."""
        d = self.mount_dir(wid)
        while True:
            rc, out, err, killed, seconds = self.run("umount", self.gantry_args("umount", d),
                                                     "umount%d" % wid)
            ok = self.judge("umount", ["umount", d], rc, out, err, killed, seconds)
            if ok or rc == 3:
                if is_mounted(d):
                    self.real_failure("umount: `%s` still mounted after gantry umount (exit %s)"
                                      % (d, rc), [("stderr", err)])
                    return False
                return True
            if rc != -signal.SIGKILL:
                return False

    def mount_worker(self, wid, rng):
        d = self.mount_dir(wid)
        os.makedirs(d, exist_ok=True)
        while not self.stop.is_set():
            self.pause(rng, 0.2, 1.0)
            ref = rng.choice(self.refs)
            ok, _ = self.op("mount", self.gantry_args("mount", ref, d), "mount%d" % wid)
            if ok:
                check_marker(self, d, ref, "mount")
            self.ensure_unmounted(wid)

    def cri_worker(self, wid, rng, pb, pbg, grpc):
        channel = grpc.insecure_channel("unix:" + self.a.socket)
        images = pbg.ImageServiceStub(channel)
        while not self.stop.is_set():
            ref = rng.choice(self.refs)
            r = rng.random()
            if r < 0.6:
                kind = "cri_pull"
                call = lambda: images.PullImage(
                    pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=120)
            elif r < 0.9:
                kind = "cri_remove"
                call = lambda: images.RemoveImage(
                    pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)), timeout=60)
            else:
                kind = "cri_list"
                call = lambda: images.ListImages(pb.ListImagesRequest(), timeout=60)
            start = time.monotonic()
            try:
                call()
                self.count(kind, "ok", seconds=time.monotonic() - start)
            except grpc.RpcError as e:
                code, details = e.code().name, e.details() or ""
                if "\n" in details.strip():
                    self.count(kind, "failed", "unclear_error")
                    self.real_failure("%s: multi-line error %s" % (kind, code),
                                      [("details", details)])
                elif code in CRI_EXPECTED:
                    # The server being down (killed, restarting) is its own class.
                    down = code == "UNAVAILABLE" and ("connect" in details.lower() or
                                                      "socket closed" in details.lower())
                    self.count(kind, "failed", "serve_down" if down else code.lower())
                else:
                    self.count(kind, "failed", code.lower())
                    self.real_failure("%s: %s: %s" % (kind, code, details), [("details", details)])
                if code == "UNAVAILABLE":
                    self.pause(rng, 0.1, 0.5)
        channel.close()

    # ---- gantry serve ---------------------------------------------------

    def serve_supervisor(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            log = os.path.join(self.a.logs, "serve%d.log" % n)
            with open(log, "w") as err:
                with self.lock:
                    # Checked under the lock that stop_serve takes: a serve
                    # started here is one stop_serve will see.
                    if self.stop.is_set():
                        return
                    self.serve = subprocess.Popen(
                        [self.a.gantry, "--root", self.a.root, "--log-level", "warn", "serve",
                         "--listen", "unix://" + self.a.socket, "--min-rate", "1024",
                         "--min-rate-window", "5"],
                        stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
                    self.serve_killed = False
                    self.serve_starts += 1
                    p = self.serve
            wait_exited(p)
            with self.lock:
                self.serve = None
                killed = self.serve_killed
            rc = p.wait()
            with open(log) as f:
                text = f.read()
            self.judge_serve(rc, killed, text, log)
            if rc != -signal.SIGKILL or not killed:
                return  # stopped (SIGTERM at the end) or failed: no restart

    def judge_serve(self, rc, killed, text, log):
        if SANITIZER.search(text):
            self.real_failure("serve: crash or sanitizer report (exit %d)" % rc,
                              [("serve.log", text)])
        elif rc == -signal.SIGKILL and killed:
            pass
        elif rc != 0 or not self.stop.is_set():
            self.real_failure("serve exited %d%s" % (rc, "" if self.stop.is_set()
                                                      else " while the soak ran"),
                              [("serve.log", text)])

    def stop_serve(self):
        """SIGTERM to the serve that runs, once it accepts connections: a
        serve the killer had just replaced may still be starting, and a
        SIGTERM before it has set up its signal handling ends it by the
        default action (exit -15), which says nothing about gantry's
        graceful stop. stop is set first, so no serve starts after this."""
        with self.lock:
            p = self.serve
        if p is None:
            return
        deadline = time.monotonic() + OP_TIMEOUT
        while time.monotonic() < deadline and not socket_accepts(self.a.socket):
            if wait_exited(p, 0.05):
                break
        with self.lock:
            # The supervisor clears self.serve under this lock once p exited.
            if self.serve is p:
                p.send_signal(signal.SIGTERM)

    # ---- the killer -----------------------------------------------------

    def killer(self, rng):
        while not self.stop.wait(rng.uniform(0.2, 2.0 * self.a.kill_interval)):
            with self.lock:
                if rng.random() < self.a.serve_kill_share and self.serve is not None:
                    self.serve_killed = True
                    os.kill(self.serve.pid, signal.SIGKILL)
                    self.kills["serve"] += 1
                    continue
                if not self.running:
                    continue
                pid = rng.choice(sorted(self.running))
                entry = self.running[pid]
                entry[2] = True
                os.kill(pid, signal.SIGKILL)
                self.kills[entry[1]] += 1

    def kill_all_running(self):
        with self.lock:
            for pid, entry in self.running.items():
                entry[2] = True
                os.kill(pid, signal.SIGKILL)
                self.kills[entry[1] + " (at the end)"] += 1


def wait_exited(p, seconds=None):
    """Waits until the child `p` has exited, without reaping it (so its pid
    stays ours to signal), or `seconds` passed; returns whether it exited."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while deadline is None or time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:
            return True
        time.sleep(0.02)
    return False


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def check_marker(soak, d, ref, what):
    """Every soak image has /soak/name holding a marker of its own."""
    want = soak.markers.get(ref, "(not a soak image)")
    try:
        with open(os.path.join(d, "soak", "name")) as f:
            got = f.read().strip()
    except OSError as e:
        got = "(%s)" % e
    if got != want:
        soak.real_failure("%s %s: /soak/name is %r, want %r" % (what, ref, got, want))
        return False
    return True


def load_cri(a):
    import grpc
    from grpc_tools import protoc
    out = os.path.join(a.work, "py")
    os.makedirs(out, exist_ok=True)
    if protoc.main(["protoc", "-I" + a.proto, "--python_out=" + out, "--grpc_python_out=" + out,
                    os.path.join(a.proto, "cri_image.proto")]) != 0:
        sys.exit("soak: grpc_tools.protoc failed on %s" % a.proto)
    sys.path.insert(0, out)
    import cri_image_pb2 as pb
    import cri_image_pb2_grpc as pbg
    return pb, pbg, grpc


def wait_for_socket(path, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def socket_accepts(path):
    """Whether a server accepts connections on the Unix socket `path` (a
    socket file left by a killed server refuses them)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def final_checks(soak):
    """fsck, then every soak image pulls and mounts, then fsck again.
    Returns the fsck exit codes, the images verified and how many of them
    pulled and mounted with their marker. The images checked are the soak's
    whole fixed set, tagged or not at the end (the removals may have left
    none tagged), plus any other image still tagged."""
    a = soak.a
    fscks = []

    def fsck(when):
        p = subprocess.run(soak.gantry_args("fsck"), capture_output=True, text=True)
        sys.stdout.write(p.stdout)
        sys.stdout.flush()
        fscks.append(p.returncode)
        if p.returncode != 0:
            soak.real_failure("fsck %s: exit %d" % (when, p.returncode),
                              [("stdout", p.stdout), ("stderr", p.stderr)])

    fsck("after the soak")
    p = subprocess.run(soak.gantry_args("images", "--json"), capture_output=True, text=True)
    import json
    tagged = set()
    if p.returncode != 0:
        soak.real_failure("images --json: exit %d" % p.returncode, [("stderr", p.stderr)])
    else:
        tagged = {i["name"] for i in json.loads(p.stdout)}
    names = sorted(set(soak.refs) | tagged)
    verified = 0
    d = os.path.join(a.work, "verify")
    os.makedirs(d, exist_ok=True)
    for name in names:
        pulled = subprocess.run(soak.gantry_args("pull", "-q", "--plain-http", name),
                                capture_output=True, text=True)
        if pulled.returncode != 0:
            soak.real_failure("re-pull of %s: exit %d" % (name, pulled.returncode),
                              [("stderr", pulled.stderr)])
            continue
        m = subprocess.run(soak.gantry_args("mount", name, d), capture_output=True, text=True)
        if m.returncode != 0:
            soak.real_failure("mount of %s: exit %d" % (name, m.returncode),
                              [("stderr", m.stderr)])
            continue
        ok = check_marker(soak, d, name, "verify")
        u = subprocess.run(soak.gantry_args("umount", d), capture_output=True, text=True)
        if u.returncode != 0:
            soak.real_failure("umount of %s: exit %d" % (name, u.returncode),
                              [("stderr", u.stderr)])
            break
        verified += ok
    fsck("after the re-pulls")
    return fscks, names, len(tagged), verified


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gantry", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--proto", required=True)
    ap.add_argument("--proxy-pid", type=int, required=True)
    ap.add_argument("--proxy-stats", required=True)
    ap.add_argument("--duration", type=float, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--pull-workers", type=int, default=3)
    ap.add_argument("--cri-workers", type=int, default=2)
    ap.add_argument("--kill-interval", type=float, default=1.5,
                    help="mean seconds between kills")
    ap.add_argument("--serve-kill-share", type=float, default=0.1,
                    help="share of kills aimed at gantry serve")
    ap.add_argument("--logs", required=True, help="where failure logs and serve logs go")
    ap.add_argument("images", nargs="+", metavar="REF=MARKER",
                    help="references through the proxy, and the content of their /soak/name")
    a = ap.parse_args()
    soak = Soak(a)
    pb, pbg, grpc = load_cri(a)

    threads = []

    def spawn(fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        threads.append(t)

    spawn(soak.serve_supervisor)
    if not wait_for_socket(a.socket, 30):
        soak.real_failure("gantry serve did not create %s" % a.socket)
    workers = 0
    for i in range(a.pull_workers):
        spawn(soak.pull_worker, i, random.Random(soak.rng.random()))
        workers += 1
    spawn(soak.rmi_worker, 0, random.Random(soak.rng.random()))
    spawn(soak.prune_worker, 0, random.Random(soak.rng.random()))
    spawn(soak.mount_worker, 0, random.Random(soak.rng.random()))
    for i in range(a.cri_workers):
        spawn(soak.cri_worker, i, random.Random(soak.rng.random()), pb, pbg, grpc)
    spawn(soak.killer, random.Random(soak.rng.random()))

    start = time.monotonic()
    time.sleep(a.duration)
    soak.stop.set()
    soak.kill_all_running()
    soak.stop_serve()
    for t in threads:
        t.join(timeout=OP_TIMEOUT + 30)
        if t.is_alive():
            soak.real_failure("a worker did not stop: %s" % t.name)
    ran = time.monotonic() - start
    # Killed mounts may have left a view (and a kernel mount) behind.
    soak.ensure_unmounted(0)
    os.kill(a.proxy_pid, signal.SIGUSR1)
    deadline = time.monotonic() + 30
    while not os.path.exists(a.proxy_stats) and time.monotonic() < deadline:
        time.sleep(0.05)

    fscks, names, tagged, verified = final_checks(soak)

    faults = collections.Counter()
    requests = 0
    try:
        with open(a.proxy_stats) as f:
            for line in f:
                w = line.split()
                if w[0] == "requests":
                    requests = int(w[1])
                elif w[0] == "fault":
                    faults[w[1]] = int(w[2])
    except OSError as e:
        soak.real_failure("no proxy stats: %s" % e)

    kinds = ["pull", "rmi", "prune", "mount", "umount", "cri_pull", "cri_remove", "cri_list"]
    print("soak: ran %.0f s, seed %d, %d pull + 1 rmi + 1 prune + 1 mount + %d CRI workers"
          % (ran, a.seed, a.pull_workers, a.cri_workers))
    for k in kinds:
        n = {o: soak.ops[(k, o)] for o in ("ok", "failed", "killed")}
        t = sorted(soak.seconds[k]) or [0]
        print("ops %-10s total %6d ok %6d failed %6d killed %5d   ok in median %.2f s, max %.1f s"
              % (k, sum(n.values()), n["ok"], n["failed"], n["killed"], t[len(t) // 2], t[-1]))
    for (k, c), n in sorted(soak.failures.items()):
        print("failures %-10s %-24s %6d" % (k, c, n))
    for k, n in sorted(soak.kills.items()):
        print("kills %-22s %6d" % (k, n))
    print("kills total %d (gantry serve started %d times)"
          % (sum(soak.kills.values()), soak.serve_starts))
    print("proxy requests %d" % requests)
    for k, n in sorted(faults.items()):
        print("faults %-12s %6d" % (k, n))
    print("faults total %d" % sum(faults.values()))
    print("fsck %s (exit codes %s)" % ("clean" if fscks and all(c == 0 for c in fscks)
                                       else "PROBLEMS", fscks))
    print("verify images %d pulled+mounted %d (tagged at the end %d)"
          % (len(names), verified, tagged))
    if verified != len(names):
        soak.real_failure("verify: %d of %d images pulled and mounted"
                          % (verified, len(names)))
    print("real failures %d" % len(soak.real))
    for r in soak.real:
        print("  " + r)
    if soak.real:
        print("soak: FAIL (logs of the failures: %s)" % os.path.join(a.logs, "failures"))
        return 1
    print("soak: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
