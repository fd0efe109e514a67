#!/usr/bin/env python3
"""The runs of bench/fleet.sh (which sets up the image, the registry and the
scratch file system, and reads this file's JSON).

    fleet_driver.py --gantry G --faultproxy P --registry 127.0.0.1:PORT
        --repo bench/usr --tag latest --blobs DIGEST,... --stores DIR
        --nodes 1,4,8,16 --runs 3 --rate-limit 50M --out results.json

One run = one N and one mode (with or without --peers), everything fresh:
  - gantry-faultproxy in front of the registry, capped at --rate-limit and
    injecting no fault (--rate 0): the "upstream"; its blob_bytes at exit
    are the run's upstream bytes;
  - N `gantry serve --no-unpack --registry-listen 127.0.0.X:PORT
    --registry-pull-through` nodes (X = 10, 11, ...), each with its own
    store under --stores; with peers also `--peers file:LIST --peers-allow
    127.0.0.0/8`, LIST naming the N doors (--peers-self defaults to the
    bound door);
  - once every door answers /v2/, each node is asked for the image's
    manifest at once (GET /v2/REPO/manifests/TAG?ns=PROXY, containerd's
    mirror request), which starts its pull in the node's pull manager, the
    same pipeline as `gantry serve --prepull`;
  - wall time: from just before the first request to the moment the last
    node has every blob of the image committed in its store (the blob files
    under content/blobs/sha256, polled every 10 ms by this one process);
    CPU time (utime + stime) of all nodes, and of the proxy, over that time;
    afterwards each node must list the image (`gantry images`), untimed.
Rounds: for each of --runs rounds, every N in turn, "without" and "with"
alternating which goes first. Everything started is stopped by PID.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ACCEPT = ("application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
          "application/vnd.docker.distribution.manifest.v2+json")


def free_port(ip):
    s = socket.socket()
    s.bind((ip, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise SystemExit(f"fleet_driver: {what} not within {timeout} s")


def http_status(url, headers=None, timeout=120):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def cpu_seconds(procs):
    """utime + stime of these processes (ours, running), in seconds."""
    total = 0
    for p in procs:
        fields = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def stop(proc):
    """SIGTERM, SIGKILL after 20 s; waits. Only our own children."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Run:
    def __init__(self, args, n, peers, index):
        self.args, self.n, self.peers = args, n, peers
        self.dir = os.path.join(args.stores, f"run{index}")
        self.procs = []

    def start_proxy(self):
        ready = os.path.join(self.dir, "proxy.addr")
        self.proxy_stats = os.path.join(self.dir, "proxy.stats")
        log = open(os.path.join(self.dir, "proxy.log"), "w")
        self.proxy = subprocess.Popen(
            [self.args.faultproxy, "--upstream", f"http://{self.args.registry}", "--rate", "0",
             "--rate-limit", self.args.rate_limit, "--ready-file", ready,
             "--stats-file", self.proxy_stats], stdout=log, stderr=log)
        self.procs.append(self.proxy)
        wait_for(lambda: os.path.exists(ready) or self.proxy.poll() is not None, 20, "proxy ready")
        if self.proxy.poll() is not None:
            raise SystemExit("fleet_driver: gantry-faultproxy exited: " +
                             open(os.path.join(self.dir, "proxy.log")).read())
        self.proxy_host = open(ready).read().strip()

    def start_nodes(self):
        port = self.args.port
        self.doors = [f"127.0.0.{10 + i}:{port}" for i in range(self.n)]
        peers_file = os.path.join(self.dir, "peers")
        with open(peers_file, "w") as f:
            f.write("".join(d + "\n" for d in self.doors))
        self.stores = []
        for i, door in enumerate(self.doors):
            store = os.path.join(self.dir, f"node{i}")
            self.stores.append(store)
            os.makedirs(store)
            cmd = [self.args.gantry, "--root", store, "serve", "--listen",
                   f"unix://{self.dir}/node{i}.sock", "--no-unpack", "--registry-listen", door,
                   "--registry-pull-through"]
            if self.peers:
                cmd += ["--peers", f"file:{peers_file}", "--peers-allow", "127.0.0.0/8"]
            log = open(os.path.join(self.dir, f"node{i}.log"), "w")
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=log))
        for i, door in enumerate(self.doors):
            node = self.procs[1 + i]
            wait_for(lambda: node.poll() is not None or http_status(f"http://{door}/v2/", timeout=2) == 200,
                     30, f"door {door}")
            if node.poll() is not None:
                raise SystemExit(f"fleet_driver: node {door} exited: " +
                                 open(os.path.join(self.dir, f"node{i}.log")).read()[-3000:])

    def has_image(self, store):
        return all(os.path.exists(os.path.join(store, "content", "blobs", "sha256", d))
                   for d in self.args.blobs)

    def pull(self):
        path = f"/v2/{self.args.repo}/manifests/{self.args.tag}?ns={self.proxy_host}"
        statuses = [0] * self.n
        go = threading.Barrier(self.n + 1)

        def ask(i):
            go.wait()
            statuses[i] = http_status(f"http://{self.doors[i]}{path}", {"Accept": ACCEPT}, 600)

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(self.n)]
        for t in threads:
            t.start()
        done = [None] * self.n
        nodes = self.procs[1:]
        cpu0 = (cpu_seconds(nodes), cpu_seconds([self.proxy]))
        go.wait()
        t0 = time.monotonic()
        deadline = t0 + 900
        while None in done and time.monotonic() < deadline:
            for i, store in enumerate(self.stores):
                if done[i] is None and self.has_image(store):
                    done[i] = time.monotonic() - t0
            time.sleep(0.01)
        self.cpu = (cpu_seconds(nodes) - cpu0[0], cpu_seconds([self.proxy]) - cpu0[1])
        for t in threads:
            t.join()
        if None in done or any(s != 200 for s in statuses):
            raise SystemExit(f"fleet_driver: N={self.n} peers={self.peers}: manifest answers "
                             f"{statuses}, done {done}; logs in {self.dir}")
        return done

    def check_images(self):
        ref = f"{self.proxy_host}/{self.args.repo}:{self.args.tag}"
        for store in self.stores:
            def listed():
                out = subprocess.run([self.args.gantry, "--root", store, "images"],
                                     capture_output=True, text=True).stdout
                return ref in out or f"{self.proxy_host}/{self.args.repo}" in out
            wait_for(listed, 60, f"{ref} listed in {store}")

    def go(self):
        os.makedirs(self.dir)
        load = open("/proc/loadavg").read().split()[:3]
        try:
            self.start_proxy()
            self.start_nodes()
            done = self.pull()
            self.check_images()
        finally:
            for p in reversed(self.procs):
                stop(p)
        stats = dict(l.split(" ", 1) for l in open(self.proxy_stats).read().splitlines()
                     if not l.startswith("fault "))
        result = {"n": self.n, "peers": self.peers, "wall": max(done), "node_times": done,
                  "upstream_bytes": int(stats["blob_bytes"]),
                  "rate_limit_waits": int(stats["rate_limit_waits"]), "loadavg": load,
                  "node_cpu": self.cpu[0], "proxy_cpu": self.cpu[1]}
        if not self.args.keep:
            shutil.rmtree(self.dir)
        return result


def main():
    ap = argparse.ArgumentParser()
    for a in ("--gantry", "--faultproxy", "--registry", "--repo", "--tag", "--blobs", "--stores",
              "--out"):
        ap.add_argument(a, required=True)
    ap.add_argument("--nodes", default="1,4,8,16")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate-limit", default="50M")
    ap.add_argument("--keep", action="store_true", help="keep each run's stores and logs")
    args = ap.parse_args()
    args.blobs = [b.split(":", 1)[1] for b in args.blobs.split(",")]
    args.port = free_port("127.0.0.10")
    results, index = [], 0
    for r in range(args.runs):
        for n in (int(x) for x in args.nodes.split(",")):
            for peers in ((False, True) if r % 2 == 0 else (True, False)):
                index += 1
                res = Run(args, n, peers, index).go()
                res["round"] = r + 1
                print(f"round {r + 1} N={n:2} {'with' if peers else 'without':7} peers: "
                      f"{res['wall']:7.2f} s, node CPU {res['node_cpu']:6.2f} s, upstream {res['upstream_bytes'] / 1e6:8.1f} MB, "
                      f"load {' '.join(res['loadavg'])}", file=sys.stderr, flush=True)
                results.append(res)
                json.dump(results, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
