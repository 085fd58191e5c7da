#!/usr/bin/env python3
"""ACR Tasks on Wharf against the same work done by hand, in one run.

1. build: a task run that writes a small Dockerfile (podman), builds it (buildah bud) and pushes
   it (buildah push), against the same three commands run by hand with the same flags, the
   same base image and the same registry; REPS repetitions, interleaved. Wall time of a task run
   is from the scheduleRun request to the moment the run record reads Succeeded.
2. latency: time from scheduleRun to the first byte of the run's log (polling the log link's
   HEAD), over LAT_RUNS runs of `echo`.
3. queue: QUEUE_RUNS runs scheduled at once; every one must finish Succeeded, exactly once
   (its log holds one agent line and its one echo).

Prints one JSON object per line: {"figure": ..., ...}.
"""

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

API = "api-version=2025-03-01-preview"


class Wharf:
    def __init__(self, base, token, registry_path):
        self.base, self.token, self.reg = base, token, registry_path

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def schedule(self, yaml):
        body = {"type": "EncodedTaskRunRequest", "encodedTaskContent": base64.b64encode(yaml.encode()).decode(),
                "values": [], "platform": {"os": "linux", "architecture": "amd64"}, "timeout": 600}
        status, run = self.call("POST", f"{self.reg}/scheduleRun?{API}", body)
        if status != 200:
            sys.exit(f"scheduleRun -> {status}: {run}")
        return run["properties"]["runId"]

    def run(self, run_id):
        status, r = self.call("GET", f"{self.reg}/runs/{run_id}?{API}")
        if status != 200:
            sys.exit(f"GET run {run_id} -> {status}: {r}")
        return r["properties"]

    def wait(self, run_id, poll=0.02):
        while True:
            p = self.run(run_id)
            if p["status"] in ("Succeeded", "Failed", "Canceled", "Error", "Timeout"):
                return p
            time.sleep(poll)

    def log_link(self, run_id):
        status, link = self.call("POST", f"{self.reg}/runs/{run_id}/listLogSasUrl?{API}")
        if status != 200:
            sys.exit(f"listLogSasUrl -> {status}: {link}")
        return link["logLink"]

    def log(self, run_id):
        with urllib.request.urlopen(self.log_link(run_id)) as r:
            return r.read().decode()


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def dockerfile(base):
    return f"FROM {base}\nRUN echo built > /built.txt\nCMD [\"cat\", \"/built.txt\"]\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--registry-path", required=True)
    ap.add_argument("--login-server", required=True)
    ap.add_argument("--image", required=True, help="the base image, pushed already, fully qualified")
    ap.add_argument("--creds", required=True, help="user:password for the hand-run push")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--lat-runs", type=int, default=20)
    ap.add_argument("--queue-runs", type=int, default=20)
    a = ap.parse_args()
    w = Wharf(a.base, a.token, a.registry_path)
    df = dockerfile(a.image).replace("\n", "\\n").replace('"', '\\"')
    task_yaml = (
        "version: v1.1.0\nsteps:\n"
        f"  - cmd: {a.image} sh -c 'printf \"%b\" \"$$DF\" > Dockerfile'\n    env: [\"DF={df}\"]\n"
        "  - build: -t $Registry/bench/task:$ID .\n"
        "  - push: [\"$Registry/bench/task:$ID\"]\n"
    )
    conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
    conf.write("[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n[engine]\nruntime = \"runc\"\n")
    conf.close()
    env = dict(os.environ, CONTAINERS_CONF=conf.name)
    # the hand path's credentials: an auth file, as the engine gives each run one
    auth = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"auths": {a.login_server: {"auth": base64.b64encode(a.creds.encode()).decode()}}}, auth)
    auth.close()

    def by_hand(i):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            # the flags the engine gives the same steps (it pulls what a run did not build)
            subprocess.run(["podman", "run", "--rm", "--network", "host", "--pull=always", "--tls-verify=false", "--authfile", auth.name,
                            "-v", f"{d}:/workspace", "-w", "/workspace", "-e", "DF=" + dockerfile(a.image), a.image,
                            "sh", "-c", 'printf "%b" "$DF" > Dockerfile'], env=env, check=True, capture_output=True)
            ref = f"{a.login_server}/bench/hand:{i}"
            subprocess.run(["buildah", "bud", "--isolation", "oci", "--network", "host", "--layers", "--force-rm", "--retry", "0",
                            "--pull-always",
                            "--tls-verify=false", "--authfile", auth.name, "-t", ref, d], env=env, check=True,
                           capture_output=True)
            subprocess.run(["buildah", "push", "--tls-verify=false", "--authfile", auth.name, ref], env=env, check=True,
                           capture_output=True)
            return time.perf_counter() - t0

    def as_task():
        t0 = time.perf_counter()
        run_id = w.schedule(task_yaml)
        p = w.wait(run_id)
        if p["status"] != "Succeeded":
            sys.exit(f"task run {run_id} ended {p['status']}: {w.log(run_id)}")
        return time.perf_counter() - t0

    hand, task = [], []
    by_hand("warm")  # the base image into the local store, once, for both
    for i in range(a.reps):
        hand.append(by_hand(i))
        task.append(as_task())
    print(json.dumps({"figure": "build", "hand_s": hand, "task_s": task,
                      "hand_median_s": statistics.median(hand), "task_median_s": statistics.median(task),
                      "ratio": statistics.median(task) / statistics.median(hand)}), flush=True)

    echo = f"steps:\n  - cmd: {a.image} echo hi\n"
    lat = []
    for _ in range(a.lat_runs):
        t0 = time.perf_counter()
        run_id = w.schedule(echo)
        link = w.log_link(run_id)
        while True:
            try:
                with urllib.request.urlopen(urllib.request.Request(link, method="HEAD")) as r:
                    if int(r.headers.get("Content-Length", "0")) > 0:
                        break
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise
            time.sleep(0.005)
        lat.append((time.perf_counter() - t0) * 1000)
        w.wait(run_id)
    print(json.dumps({"figure": "first_log_line", "runs": len(lat), "p50_ms": round(statistics.median(lat), 1),
                      "p99_ms": round(pct(lat, 99), 1)}), flush=True)

    t0 = time.perf_counter()
    ids = [w.schedule(f"steps:\n  - cmd: {a.image} echo queued-{n}\n") for n in range(a.queue_runs)]
    results = {i: w.wait(i, poll=0.1) for i in ids}
    wall = time.perf_counter() - t0
    ok = sum(1 for p in results.values() if p["status"] == "Succeeded")
    once = 0
    for n, i in enumerate(ids):
        log = w.log(i)
        if log.count("is running on agent") == 1 and log.count(f"queued-{n}\r\n") == 1:
            once += 1
    print(json.dumps({"figure": "queue", "runs": len(ids), "distinct_ids": len(set(ids)), "succeeded": ok,
                      "ran_exactly_once": once, "wall_s": round(wall, 1)}), flush=True)


if __name__ == "__main__":
    main()
