"""Runs every ContainerRegistryClient method the SDK tests use on each repository named on the
command line, flat ones and nested ones alike (the SDK sends a nested name as one encoded path
segment, /acr/v1/team%2Fsvc%2Fapi/_tags, which ACR reads as the nested name).

Usage: nested_names.py AUTHORITY TENANT APP_ID SECRET LOGIN_SERVER REPO...
Each repository must hold tags v1 and v2. REQUESTS_CA_BUNDLE names the server's CA. Prints one
JSON object: for each repository, what each call saw.
"""

import json
import sys

from azure.containerregistry import ContainerRegistryClient
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential

ACR_AUDIENCE = "https://containerregistry.azure.net"


def exercise(acr, repo):
    out = {}
    out["listed"] = repo in list(acr.list_repository_names())
    out["repository_name"] = acr.get_repository_properties(repo).name
    out["tags"] = sorted(t.name for t in acr.list_tag_properties(repo))
    out["tag_digest_matches"] = acr.get_tag_properties(repo, "v1").digest == acr.get_manifest_properties(repo, "v1").digest
    out["manifests"] = len(list(acr.list_manifest_properties(repo)))
    manifest = acr.get_manifest_properties(repo, "v1")
    out["manifest_can_delete"] = acr.update_manifest_properties(repo, manifest.digest, can_delete=False).can_delete
    try:
        acr.delete_manifest(repo, manifest.digest)
        out["locked_delete"] = "deleted"
    except HttpResponseError as e:
        out["locked_delete"] = e.status_code
    acr.update_manifest_properties(repo, manifest.digest, can_delete=True)
    out["tag_can_write"] = acr.update_tag_properties(repo, "v1", can_write=False).can_write
    acr.update_tag_properties(repo, "v1", can_write=True)
    out["repository_can_write"] = acr.update_repository_properties(repo, can_write=False).can_write
    acr.update_repository_properties(repo, can_write=True)
    acr.delete_tag(repo, "v2")
    out["tags_after_delete"] = sorted(t.name for t in acr.list_tag_properties(repo))
    acr.delete_repository(repo)
    out["listed_after_delete"] = repo in list(acr.list_repository_names())
    return out


def main():
    authority, tenant, app_id, secret, login_server = sys.argv[1:6]
    repos = sys.argv[6:]
    cred = ClientSecretCredential(tenant, app_id, secret, authority=authority, disable_instance_discovery=True)
    acr = ContainerRegistryClient(endpoint="https://" + login_server, credential=cred, audience=ACR_AUDIENCE)
    print(json.dumps({repo: exercise(acr, repo) for repo in repos}), flush=True)


if __name__ == "__main__":
    main()
