"""oras-py against Wharf: push a file artifact, attach a referrer with a subject, pull back.

Usage: oras_referrers.py HOST NAME WORKDIR DOCKER_CONFIG
  HOST           registry host:port (plain HTTP)
  NAME           repository name as the client sees it (path style: registry/repo)
  WORKDIR        directory holding artifact.txt and signature.txt (oras-py wants relative paths)
  DOCKER_CONFIG  private docker config file: oras-py reads ~/.docker/config.json unless told

Credentials, if any, come from WHARF_USERNAME / WHARF_PASSWORD (Basic auth, no login(): login()
would write a docker config). Prints one JSON object with what the Rust test checks.
"""
import json
import os
import sys

import oras.client
import oras.oci
import requests

host, name, workdir, docker_config = sys.argv[1:5]
user = os.environ.get("WHARF_USERNAME")
password = os.environ.get("WHARF_PASSWORD")
os.chdir(workdir)

client = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic")
if user:
    client.auth.set_basic_auth(user, password)
auth = (user, password) if user else None

pushed = client.push(target=f"{host}/{name}:v1", files=["artifact.txt"], config_path=docker_config)
head = requests.head(
    f"http://{host}/v2/{name}/manifests/v1",
    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    auth=auth,
)
head.raise_for_status()
subject = oras.oci.Subject(
    mediaType=head.headers["Content-Type"],
    digest=head.headers["Docker-Content-Digest"],
    size=int(head.headers["Content-Length"]),
)

referrer = client.push(
    target=f"{host}/{name}:signature",
    files=["signature.txt:application/vnd.example.signature"],
    manifest_config="sigconfig.json:application/vnd.example.signature.config+json",
    manifest_annotations={"org.example.signed-by": "wharf-tests"},
    subject=subject,
    config_path=docker_config,
)

os.makedirs("pulled", exist_ok=True)
files = client.pull(target=f"{host}/{name}:v1", outdir="pulled", config_path=docker_config)

print(json.dumps({
    "artifact_status": pushed.status_code,
    "subject_digest": subject.digest,
    "referrer_status": referrer.status_code,
    "referrer_oci_subject": referrer.headers.get("OCI-Subject"),
    "referrer_digest": referrer.headers.get("Docker-Content-Digest"),
    "pulled": [os.path.relpath(f) for f in files],
}))
