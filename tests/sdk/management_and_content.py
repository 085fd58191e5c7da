"""Drives Wharf with unmodified Azure SDKs as an application would: azure-identity's
ClientSecretCredential, azure-mgmt-containerregistry's ContainerRegistryManagementClient
(create, get, update of network properties, list) and azure-containerregistry's
ContainerRegistryClient (repositories, tags, manifest properties, property updates, deletes).

Usage: management_and_content.py AUTHORITY TENANT APP_ID SECRET SUBSCRIPTION RESOURCE_GROUP REGISTRY
REQUESTS_CA_BUNDLE names the server's CA. The registry must not exist yet; after creating it,
the script prints {"phase": "created", ...} on one line and waits for one line on stdin (the
test pushes content meanwhile), then prints one JSON object with what it saw.
"""

import json
import sys

from azure.containerregistry import ContainerRegistryClient
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry.models import Registry, RegistryUpdateParameters, Sku

ARM_SCOPE = "https://management.core.windows.net/.default"
ACR_AUDIENCE = "https://containerregistry.azure.net"


def main():
    authority, tenant, app_id, secret, subscription, group, name = sys.argv[1:8]
    cred = ClientSecretCredential(tenant, app_id, secret, authority=authority, disable_instance_discovery=True)
    mgmt = ContainerRegistryManagementClient(cred, subscription, base_url=authority, credential_scopes=[ARM_SCOPE])
    out = {}

    created = mgmt.registries.begin_create(group, name, Registry(location="westus", sku=Sku(name="Premium"))).result()
    out["created"] = {"login_server": created.login_server, "sku": created.sku.name, "state": created.provisioning_state,
                      "bypass": created.network_rule_bypass_options}
    fetched = mgmt.registries.get(group, name)
    out["fetched_id"] = fetched.id
    updated = mgmt.registries.begin_update(
        group, name, RegistryUpdateParameters(network_rule_bypass_options="None", anonymous_pull_enabled=False)
    ).result()
    out["updated_bypass"] = updated.network_rule_bypass_options
    updated = mgmt.registries.begin_update(group, name, RegistryUpdateParameters(network_rule_bypass_options="AzureServices")).result()
    out["restored_bypass"] = updated.network_rule_bypass_options
    out["listed"] = sorted(r.name for r in mgmt.registries.list_by_resource_group(group))
    try:
        mgmt.registries.get(group, "nosuchregistry")
        out["missing"] = "found"
    except ResourceNotFoundError as e:
        out["missing"] = e.error.code if e.error else "ResourceNotFoundError"

    print(json.dumps({"phase": "created", "login_server": created.login_server}), flush=True)
    sys.stdin.readline()

    acr = ContainerRegistryClient(endpoint="https://" + created.login_server, credential=cred, audience=ACR_AUDIENCE)
    out["repositories"] = sorted(acr.list_repository_names())
    out["tags"] = sorted(t.name for t in acr.list_tag_properties("app"))
    manifest = acr.get_manifest_properties("app", "v1")
    out["manifest_digest"] = manifest.digest
    out["manifest_tags"] = sorted(manifest.tags or [])
    props = acr.update_manifest_properties("app", manifest.digest, can_delete=False)
    out["manifest_can_delete"] = props.can_delete
    try:
        acr.delete_manifest("app", manifest.digest)
        out["locked_delete"] = "deleted"
    except HttpResponseError as e:
        out["locked_delete"] = e.status_code
    acr.update_manifest_properties("app", manifest.digest, can_delete=True)
    repo = acr.update_repository_properties("app", can_list=True, can_write=False)
    out["repository_can_write"] = repo.can_write
    acr.update_repository_properties("app", can_write=True)
    acr.delete_tag("app", "v2")
    out["tags_after_delete"] = sorted(t.name for t in acr.list_tag_properties("app"))
    acr.delete_repository("app")
    out["repositories_after_delete"] = sorted(acr.list_repository_names())
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
