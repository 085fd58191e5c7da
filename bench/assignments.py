#!/usr/bin/env python3
"""Role-assignment write latency against the number of assignments that already exist.

Drives Wharf's management API over ONE keep-alive connection (http.client), as a script of
`az role assignment create` calls would if it reused its connection. For each level N (ascending):
fill the scope up to N conditional ABAC assignments (not timed), then time SAMPLES fresh
`PUT .../roleAssignments/{guid}` writes, then DELETE those samples so the next level starts from
exactly N. Every assignment has its own condition (a repository prefix), so none is a duplicate.

Prints one JSON line per level: {"existing": N, "p50_ms": .., "p90_ms": .., "p99_ms": .., ...}.
"""

import argparse
import http.client
import json
import statistics
import sys
import time
import urllib.parse
import uuid

API = "api-version=2022-04-01"
READER = "b93aa761-3e63-49ed-ac28-beffa264f7ac"  # Container Registry Repository Reader
CONDITION = (
    "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}))"
    " OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name]"
    " StringStartsWithIgnoreCase 'team%d/'))"
)


class Arm:
    def __init__(self, base, token):
        u = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.opened = 0

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers=self.headers)
        r = self.conn.getresponse()
        payload = r.read()
        if r.will_close:
            # a keep-alive benchmark that reconnects measures something else: say so
            self.opened += 1
            self.conn.close()
        return r.status, payload


def assignment_body(scope, principal, i):
    return {
        "properties": {
            "roleDefinitionId": f"{scope}/providers/Microsoft.Authorization/roleDefinitions/{READER}",
            "principalId": principal,
            "condition": CONDITION % i,
            "conditionVersion": "2.0",
        }
    }


def put(arm, scope, principal, i):
    guid = str(uuid.uuid4())
    path = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}?{API}"
    t0 = time.perf_counter()
    status, payload = arm.call("PUT", path, assignment_body(scope, principal, i))
    ms = (time.perf_counter() - t0) * 1000
    if status != 201:
        sys.exit(f"PUT role assignment #{i} -> {status}: {payload[:300]!r}")
    return guid, ms


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--token", required=True, help="management token of a principal that may write assignments")
    ap.add_argument("--scope", required=True, help="the registry's resource id")
    ap.add_argument("--principal", required=True, help="object id the assignments are for")
    ap.add_argument("--levels", default="0,1000,2000,4000")
    ap.add_argument("--samples", type=int, default=200)
    a = ap.parse_args()

    arm = Arm(a.base, a.token)
    existing, counter = 0, 0
    for level in [int(x) for x in a.levels.split(",")]:
        t_fill = time.perf_counter()
        while existing < level:
            put(arm, a.scope, a.principal, counter)
            existing += 1
            counter += 1
        fill_s = time.perf_counter() - t_fill
        times, made = [], []
        for _ in range(a.samples):
            guid, ms = put(arm, a.scope, a.principal, counter)
            counter += 1
            times.append(ms)
            made.append(guid)
        for guid in made:
            status, payload = arm.call("DELETE", f"{a.scope}/providers/Microsoft.Authorization/roleAssignments/{guid}?{API}")
            if status != 200:
                sys.exit(f"DELETE role assignment {guid} -> {status}: {payload[:300]!r}")
        print(json.dumps({
            "existing": level,
            "samples": len(times),
            "p50_ms": round(statistics.median(times), 2),
            "p90_ms": round(percentile(times, 90), 2),
            "p99_ms": round(percentile(times, 99), 2),
            "max_ms": round(max(times), 2),
            "fill_s": round(fill_s, 1),
            "reconnects": arm.opened,
        }), flush=True)


if __name__ == "__main__":
    main()
