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
4. upload (with --wharf-bin): `wharf acr build --no-wait` of a SOURCE_MIB context of random
   bytes (pack, upload, scheduleRun) against packing the same directory with `tar czf` and
   uploading it with `curl -T` to a link from listBuildSourceUploadUrl; REPS repetitions,
   interleaved, each build's run waited for outside the timing.
5. trigger (with --git-root): a task building FROM the base image, from a git repository below
   the server's --task-git-file-root; TRIGGER_RUNS times, a new base manifest is pushed and the
   time from the start of that manifest PUT to the dependant run's startTime is taken.

Prints one JSON object per line: {"figure": ..., ...}.
"""

import argparse
import base64
import datetime
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
    ap.add_argument("--wharf-bin", help="the wharf binary, for the upload figure")
    ap.add_argument("--source-mib", type=int, default=50)
    ap.add_argument("--git-root", help="a directory below the server's --task-git-file-root, for the trigger figure")
    ap.add_argument("--trigger-runs", type=int, default=5)
    ap.add_argument("--only", default="build,latency,queue,upload,trigger")
    a = ap.parse_args()
    only = set(a.only.split(","))
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

    if "build" in only:
        build_figure(a, by_hand, as_task)
    if "latency" in only:
        latency_figure(a, w)
    if "queue" in only:
        queue_figure(a, w)
    if "upload" in only and a.wharf_bin:
        upload_figure(a, w)
    if "trigger" in only and a.git_root:
        trigger_figure(a, w)


def build_figure(a, by_hand, as_task):
    hand, task = [], []
    by_hand("warm")  # the base image into the local store, once, for both
    for i in range(a.reps):
        hand.append(by_hand(i))
        task.append(as_task())
    print(json.dumps({"figure": "build", "hand_s": hand, "task_s": task,
                      "hand_median_s": statistics.median(hand), "task_median_s": statistics.median(task),
                      "ratio": statistics.median(task) / statistics.median(hand)}), flush=True)


def latency_figure(a, w):
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


def queue_figure(a, w):
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


def upload_figure(a, w):
    user, password = a.creds.split(":", 1)
    cfg = tempfile.mkdtemp()
    env = dict(os.environ, WHARF_CONFIG_DIR=cfg)
    subprocess.run([a.wharf_bin, "login", "--server", a.base, "--username", user, "--password", password],
                   env=env, check=True, capture_output=True)
    registry = a.registry_path.rstrip("/").rsplit("/", 1)[1]
    ctx = tempfile.mkdtemp()
    with open(os.path.join(ctx, "payload.bin"), "wb") as f:
        f.write(os.urandom(a.source_mib << 20))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(f"FROM {a.image}\n")
    archive = os.path.join(tempfile.mkdtemp(), "ctx.tar.gz")

    def wait_latest():
        status, runs = w.call("GET", f"{w.reg}/runs?{API}&$top=1")
        if status == 200 and runs["value"]:
            w.wait(runs["value"][0]["properties"]["runId"], poll=0.1)

    def by_cli():
        t0 = time.perf_counter()
        r = subprocess.run([a.wharf_bin, "acr", "build", "-r", registry, "-t", "bench/upload:{{.Run.ID}}", "--no-push",
                            "--no-wait", ctx], env=env, capture_output=True, text=True)
        t = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(f"wharf acr build -> {r.returncode}: {r.stderr}")
        wait_latest()
        return t

    def by_curl():
        t0 = time.perf_counter()
        subprocess.run(["tar", "czf", archive, "-C", ctx, "."], check=True)
        status, link = w.call("POST", f"{w.reg}/listBuildSourceUploadUrl?{API}")
        if status != 200:
            sys.exit(f"listBuildSourceUploadUrl -> {status}: {link}")
        subprocess.run(["curl", "-sSf", "-o", "/dev/null", "-X", "PUT", "-H", "x-ms-blob-type: BlockBlob", "-H", "Expect:",
                        "-T", archive, link["uploadUrl"]], check=True)
        return time.perf_counter() - t0

    cli, curl = [], []
    by_curl()  # the payload into the page cache
    for _ in range(a.reps):
        curl.append(by_curl())
        cli.append(by_cli())
    print(json.dumps({"figure": "upload", "mib": a.source_mib, "cli_s": cli, "curl_s": curl,
                      "cli_median_s": statistics.median(cli), "curl_median_s": statistics.median(curl),
                      "ratio": statistics.median(cli) / statistics.median(curl)}), flush=True)


def data_plane(a, method, path, body=None, headers=None):
    registry = a.registry_path.rstrip("/").rsplit("/", 1)[1]
    req = urllib.request.Request(f"{a.base}/v2/{registry}/{path}", data=body, method=method)
    req.add_header("Authorization", "Basic " + base64.b64encode(a.creds.encode()).decode())
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req) as r:
        return r.read(), r.headers


def trigger_figure(a, w):
    import hashlib
    repo = os.path.join(a.git_root, "bench-trigger")
    os.makedirs(repo, exist_ok=True)
    with open(os.path.join(repo, "Dockerfile"), "w") as f:
        f.write(f"FROM {a.image}\nRUN echo rebuilt > /rebuilt.txt\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "bench"]):
        subprocess.run(git + args, cwd=repo, check=True, capture_output=True)
    task = "benchtrigger"
    body = {"location": "westus", "properties": {
        "status": "Enabled", "platform": {"os": "linux", "architecture": "amd64"}, "timeout": 600, "credentials": {},
        "trigger": {"baseImageTrigger": {"baseImageTriggerType": "Runtime", "status": "Enabled", "name": "default"}},
        "step": {"type": "Docker", "imageNames": ["bench/trigger:{{.Run.ID}}"], "isPushEnabled": True,
                 "dockerFilePath": "Dockerfile", "contextPath": f"file://{repo}#main"}}}
    status, t = w.call("PUT", f"{w.reg}/tasks/{task}?{API}", body)
    if status not in (200, 201):
        sys.exit(f"PUT task -> {status}: {t}")

    def latest():
        status, runs = w.call("GET", f"{w.reg}/runs?{API}&$top=1&$filter=TaskName eq '{task}'".replace(" ", "%20"))
        if status != 200:
            sys.exit(f"GET runs -> {status}: {runs}")
        return runs["value"][0]["properties"] if runs["value"] else None

    status, run = w.call("POST", f"{w.reg}/scheduleRun?{API}", {"type": "TaskRunRequest", "taskId": f"{w.reg}/tasks/{task}"})
    if status != 200:
        sys.exit(f"scheduleRun -> {status}: {run}")
    p = w.wait(run["properties"]["runId"])
    if p["status"] != "Succeeded":
        sys.exit(f"the trigger task's first run ended {p['status']}: {w.log(p['runId'])}")
    repo_path = a.image.split("/", 1)[1].rsplit(":", 1)[0]
    tag = a.image.rsplit(":", 1)[1]
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    delays = []
    for i in range(a.trigger_runs):
        raw, headers = data_plane(a, "GET", f"{repo_path}/manifests/{tag}", headers={"Accept": accept})
        manifest = json.loads(raw)
        config, _ = data_plane(a, "GET", f"{repo_path}/blobs/{manifest['config']['digest']}")
        doc = json.loads(config)
        doc.setdefault("config", {}).setdefault("Labels", {})["bench.revision"] = f"{time.time()}-{i}"
        new = json.dumps(doc).encode()
        digest = "sha256:" + hashlib.sha256(new).hexdigest()
        data_plane(a, "POST", f"{repo_path}/blobs/uploads/?digest={digest}", body=new,
                   headers={"Content-Type": "application/octet-stream"})
        manifest["config"]["digest"], manifest["config"]["size"] = digest, len(new)
        before = latest()["runId"]
        t0 = time.time()
        data_plane(a, "PUT", f"{repo_path}/manifests/{tag}", body=json.dumps(manifest).encode(),
                   headers={"Content-Type": headers.get("Content-Type", manifest.get("mediaType", accept.split(",")[0]))})
        while True:
            p = latest()
            if p["runId"] != before and p.get("startTime"):
                break
            time.sleep(0.01)
        started = datetime.datetime.fromisoformat(p["startTime"].replace("Z", "+00:00")).timestamp()
        delays.append((started - t0) * 1000)
        done = w.wait(p["runId"], poll=0.1)
        if done["status"] != "Succeeded":
            sys.exit(f"triggered run {p['runId']} ended {done['status']}: {w.log(p['runId'])}")
    print(json.dumps({"figure": "trigger", "runs": len(delays), "delays_ms": [round(d, 1) for d in delays],
                      "p50_ms": round(statistics.median(delays), 1), "max_ms": round(max(delays), 1)}), flush=True)


if __name__ == "__main__":
    main()
