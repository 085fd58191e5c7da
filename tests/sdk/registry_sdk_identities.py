"""Drives Wharf with unmodified Azure SDKs: azure-identity's ManagedIdentityCredential (App
Service style, from IDENTITY_ENDPOINT and IDENTITY_HEADER) and ClientSecretCredential, then
azure-containerregistry's ContainerRegistryClient listing repositories and tags.

Usage: registry_sdk_identities.py mi [CLIENT_ID]      (IDENTITY_ENDPOINT/IDENTITY_HEADER set)
       registry_sdk_identities.py sp TENANT APP_ID SECRET AUTHORITY
The registry endpoint comes from WHARF_REGISTRY_ENDPOINT (https://<login server>); the CA
bundle from REQUESTS_CA_BUNDLE. Prints one JSON object: the token's claims of interest, the
repositories and the tags of the first one.
"""

import base64
import json
import os
import sys

from azure.containerregistry import ContainerRegistryClient
from azure.identity import ClientSecretCredential, ManagedIdentityCredential

ACR_AUDIENCE = "https://containerregistry.azure.net"


def claims(token):
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def main():
    mode = sys.argv[1]
    if mode == "mi":
        client_id = sys.argv[2] if len(sys.argv) > 2 else None
        cred = ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    elif mode == "sp":
        tenant, app_id, secret, authority = sys.argv[2:6]
        cred = ClientSecretCredential(tenant, app_id, secret, authority=authority, disable_instance_discovery=True)
    else:
        raise SystemExit(f"unknown mode {mode}")
    token = cred.get_token(ACR_AUDIENCE + "/.default")
    c = claims(token.token)
    client = ContainerRegistryClient(endpoint=os.environ["WHARF_REGISTRY_ENDPOINT"], credential=cred, audience=ACR_AUDIENCE)
    repos = list(client.list_repository_names())
    tags = [t.name for t in client.list_tag_properties(repos[0])] if repos else []
    print(json.dumps({
        "oid": c.get("oid"),
        "appid": c.get("appid"),
        "host_type": c.get("wharf_host_type"),
        "mi_kind": c.get("wharf_mi_kind"),
        "expires_on": token.expires_on,
        "repositories": repos,
        "tags": tags,
    }))


if __name__ == "__main__":
    main()
