#!/usr/bin/python3
"""Times kubelet's way of pulling: a CRI PullImage call to `gantry serve`.

  cri_pull.py PROTO_DIR STUB_DIR GANTRY STORE SOCKET REF RUNS PREPARE OUT_JSON

For each of 1 warm-up + RUNS runs, cold as the hyperfine runs of
bench/unpack.sh: PREPARE (a shell command: delete the store, sync) runs,
`gantry --root STORE serve --plain-http` starts on SOCKET, the client
connects, and the PullImage call alone is timed on the client (so neither
the server's start nor the client's gRPC set-up is counted; `gantry pull`'s
figure includes its process start, a few ms). The server is then stopped
with SIGTERM. OUT_JSON gets hyperfine's shape ({"results": [{"command",
"median", "min", "max", "user", "system", "times"}]}), user/system being
the server process's CPU time per run (its start and stop included).
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time

proto, stubs, gantry, store, sock, ref, runs, prepare, out = sys.argv[1:10]
runs = int(runs)

import grpc  # noqa: E402
from grpc_tools import protoc  # noqa: E402

os.makedirs(stubs, exist_ok=True)
assert protoc.main(["protoc", "-I" + proto, "--python_out=" + stubs, "--grpc_python_out=" + stubs,
                    proto + "/cri_image.proto"]) == 0
sys.path.insert(0, stubs)
import cri_image_pb2 as pb  # noqa: E402
import cri_image_pb2_grpc as pbg  # noqa: E402

times, users, systems = [], [], []
for i in range(runs + 1):
    subprocess.run(["sh", "-c", prepare], check=True)
    if os.path.exists(sock):
        os.unlink(sock)
    log = open(os.path.join(stubs, "serve.log"), "ab")
    server = subprocess.Popen([gantry, "--root", store, "--log-level", "warn", "serve", "--plain-http",
                               "--listen", "unix://" + sock], stdout=log, stderr=log)
    try:
        channel = grpc.insecure_channel("unix:" + sock)
        grpc.channel_ready_future(channel).result(timeout=60)
        images = pbg.ImageServiceStub(channel)
        start = time.perf_counter()
        reply = images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=ref)), timeout=600)
        elapsed = time.perf_counter() - start
        assert reply.image_ref.startswith("sha256:"), reply
        channel.close()
    finally:
        server.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(server.pid, 0)
        server.returncode = os.waitstatus_to_exitcode(status)
    if server.returncode != 0:
        sys.exit(f"cri_pull.py: gantry serve exited {server.returncode}; see {stubs}/serve.log")
    if i == 0:
        continue  # warm-up
    times.append(elapsed)
    users.append(usage.ru_utime)
    systems.append(usage.ru_stime)

result = {"command": "gantry CRI PullImage", "median": statistics.median(times), "min": min(times),
          "max": max(times), "user": statistics.mean(users), "system": statistics.mean(systems),
          "times": times}
json.dump({"results": [result]}, open(out, "w"))
print(f"gantry CRI PullImage {ref}: median {result['median']:.3f} s  min {result['min']:.3f} s  "
      f"max {result['max']:.3f} s", file=sys.stderr)
