#!/usr/bin/env python3
"""zb-style OCI registry load generator (after project-zot/zot cmd/zb), stdlib only.

One "request" is a whole multi-call sequence, as in zb:

  push  a fresh repository per request: POST upload -> PUT <Location>?digest= (whole layer,
        streamed from a file) -> POST + PUT config blob -> PUT manifest by tag
  pull  HEAD manifest -> GET manifest -> HEAD config -> GET config -> HEAD layer -> GET layer
        (streamed to nowhere). Each worker first pushes one image of its own (not timed).
  seed  push one image into --repo with --tag (setup for other scenarios); prints its digest.

Test data: one file per size, generated once (random first 4 KiB then zeros, like zb), kept
in --workdir with its SHA-256 next to it. `c` workers, each with one keep-alive HTTP/1.1
connection, run n/c requests sequentially. rps = n / wall time of the timed phase;
percentiles as zb computes them: sorted latencies, p50 = lat[n/2], p99 = lat[n*99/100].

Prints one JSON object: {test, size_mib, c, n, rps, p50_ms, p99_ms, min_ms, max_ms, errors, ...}.
Exit code 1 if any request failed.
"""

import argparse
import hashlib
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
import uuid

MIB = 1024 * 1024
BLOCK = 1 * MIB  # socket send / read size
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"


class HttpError(Exception):
    pass


def make_blob(workdir, size_mib):
    """Returns (path, size, digest) of the test layer for this size, creating it once."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, f"zb-{size_mib}MiB.blob")
    size = size_mib * MIB
    dpath = path + ".sha256"
    if os.path.exists(path) and os.path.getsize(path) == size and os.path.exists(dpath):
        with open(dpath) as f:
            return path, size, f.read().strip()
    head = os.urandom(min(4096, size))
    h = hashlib.sha256()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head)
        h.update(head)
        zeros = bytes(BLOCK)
        left = size - len(head)
        while left > 0:
            k = min(left, BLOCK)
            f.write(zeros[:k])
            h.update(zeros[:k])
            left -= k
    os.replace(tmp, path)
    digest = "sha256:" + h.hexdigest()
    with open(dpath, "w") as f:
        f.write(digest + "\n")
    return path, size, digest


def make_image(layer_size, layer_digest):
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "config": {"Cmd": ["/bin/sh"]},
        },
        separators=(",", ":"),
    ).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "size": len(config), "digest": config_digest},
            "layers": [{"mediaType": LAYER_TYPE, "size": layer_size, "digest": layer_digest}],
        },
        separators=(",", ":"),
    ).encode()
    return config, config_digest, manifest


class Client:
    """One keep-alive connection; reconnects after an error."""

    def __init__(self, base, authorization=""):
        self.auth = {"Authorization": authorization} if authorization else {}
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120, blocksize=BLOCK)
            self.conn.connect()
            # like Go's net/http (zb): no Nagle, so a header sent apart from its body is not delayed
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.conn

    def reset(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def call(self, method, url, body=None, headers=None, expect=(200,), sink=False):
        """Sends one request; returns (status, headers, body bytes or None when sunk)."""
        conn = self._conn()
        conn.request(method, url, body=body, headers={**self.auth, **(headers or {})})
        resp = conn.getresponse()
        if sink:
            while resp.read(BLOCK):
                pass
            data = None
        else:
            data = resp.read()
        if resp.status not in expect:
            raise HttpError(f"{method} {url} -> {resp.status} {(data or b'')[:200]!r}")
        return resp.status, resp.headers, data


def with_digest(location, digest):
    """Turns an upload Location (absolute or relative, maybe with a query) into the PUT URL path."""
    u = urllib.parse.urlsplit(location)
    q = u.query + ("&" if u.query else "") + urllib.parse.urlencode({"digest": digest})
    return urllib.parse.urlunsplit(("", "", u.path, q, ""))


def put_blob(cl, prefix, repo, body, size, digest):
    _, h, _ = cl.call("POST", f"{prefix}/{repo}/blobs/uploads/", headers={"Content-Length": "0"}, expect=(202,))
    loc = h.get("Location")
    if not loc:
        raise HttpError("POST upload: no Location")
    cl.call(
        "PUT",
        with_digest(loc, digest),
        body=body,
        headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
        expect=(201,),
    )


def push_image(cl, prefix, repo, tag, img):
    path, size, digest, config, config_digest, manifest = img
    with open(path, "rb") as f:
        put_blob(cl, prefix, repo, f, size, digest)
    put_blob(cl, prefix, repo, config, len(config), config_digest)
    _, h, _ = cl.call(
        "PUT",
        f"{prefix}/{repo}/manifests/{tag}",
        body=manifest,
        headers={"Content-Type": MANIFEST_TYPE, "Content-Length": str(len(manifest))},
        expect=(201,),
    )
    return h.get("Docker-Content-Digest")


def pull_image(cl, prefix, repo, tag, img):
    _, _, digest, _, config_digest, _ = img
    acc = {"Accept": MANIFEST_TYPE}
    cl.call("HEAD", f"{prefix}/{repo}/manifests/{tag}", headers=acc)
    _, _, m = cl.call("GET", f"{prefix}/{repo}/manifests/{tag}", headers=acc)
    m = json.loads(m)
    if m["config"]["digest"] != config_digest or m["layers"][0]["digest"] != digest:
        raise HttpError("pulled manifest does not match the pushed one")
    cl.call("HEAD", f"{prefix}/{repo}/blobs/{config_digest}")
    cl.call("GET", f"{prefix}/{repo}/blobs/{config_digest}")
    for layer in m["layers"]:
        cl.call("HEAD", f"{prefix}/{repo}/blobs/{layer['digest']}")
        cl.call("GET", f"{prefix}/{repo}/blobs/{layer['digest']}", sink=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--prefix", required=True, help="path before the repository name, e.g. /v2 or /v2/myregistry")
    ap.add_argument("--test", required=True, choices=["push", "pull", "seed"])
    ap.add_argument("-c", "--concurrency", type=int, default=1)
    ap.add_argument("-n", "--requests", type=int, default=1)
    ap.add_argument("--size-mib", type=int, default=1)
    ap.add_argument("--workdir", default="/tmp/wharf-bench/inputs")
    ap.add_argument("--repo-prefix", default="zb", help="repositories are <repo-prefix>/<uuid>")
    ap.add_argument("--repo", help="seed: repository to push into")
    ap.add_argument("--tag", default="latest")
    ap.add_argument("--authorization", default="", help="Authorization header value sent on every request")
    a = ap.parse_args()
    prefix = a.prefix.rstrip("/")

    path, size, digest = make_blob(a.workdir, a.size_mib)
    config, config_digest, manifest = make_image(size, digest)
    img = (path, size, digest, config, config_digest, manifest)

    if a.test == "seed":
        cl = Client(a.base, a.authorization)
        d = push_image(cl, prefix, a.repo, a.tag, img)
        print(json.dumps({"repo": a.repo, "tag": a.tag, "digest": d}))
        return 0

    c = max(1, a.concurrency)
    if a.requests < c:
        sys.exit("requests must be >= concurrency")
    per = a.requests // c  # zb rounds n down to a multiple of c
    n = per * c

    lat, errors, first_errors = [], [0], []
    lock = threading.Lock()
    ready = threading.Barrier(c + 1)

    def worker():
        cl = Client(a.base, a.authorization)
        repo = None
        if a.test == "pull":  # setup, not timed
            repo = f"{a.repo_prefix}/{uuid.uuid4().hex}"
            try:
                push_image(cl, prefix, repo, a.tag, img)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors[0] += per
                    first_errors.append(f"setup: {e}")
                ready.wait()
                ready.wait()
                return
        ready.wait()
        ready.wait()  # start signal
        mine = []
        for _ in range(per):
            t0 = time.perf_counter()
            try:
                if a.test == "push":
                    push_image(cl, prefix, f"{a.repo_prefix}/{uuid.uuid4().hex}", a.tag, img)
                else:
                    pull_image(cl, prefix, repo, a.tag, img)
                mine.append(time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001
                cl.reset()
                with lock:
                    errors[0] += 1
                    if len(first_errors) < 5:
                        first_errors.append(str(e))
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(c)]
    for t in threads:
        t.start()
    ready.wait()  # every worker finished its setup
    t0 = time.perf_counter()
    ready.wait()  # go
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0

    lat.sort()
    k = len(lat)

    def ms(x):
        return round(x * 1000, 3)

    out = {
        "test": a.test,
        "size_mib": a.size_mib,
        "c": c,
        "n": n,
        "ok": k,
        "errors": errors[0],
        "wall_s": round(wall, 3),
        "rps": round(k / wall, 3) if wall > 0 else 0,
        "MBps": round(k * size / wall / 1e6, 1) if wall > 0 else 0,
        "p50_ms": ms(lat[k // 2]) if k else None,
        "p99_ms": ms(lat[k * 99 // 100]) if k else None,
        "min_ms": ms(lat[0]) if k else None,
        "max_ms": ms(lat[-1]) if k else None,
    }
    if first_errors:
        out["first_errors"] = first_errors
    print(json.dumps(out))
    return 1 if errors[0] else 0


if __name__ == "__main__":
    sys.exit(main())
