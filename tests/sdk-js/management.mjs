// The Azure SDK for JavaScript on Wharf's management API, as an application uses it:
// @azure/identity's ClientSecretCredential and @azure/arm-containerregistry's
// ContainerRegistryManagementClient with Wharf as its endpoint and nothing else changed, so the
// SDK asks for a token for `{endpoint}/.default` (issue 10 item 12).
//
// Usage: node management.mjs ENDPOINT TENANT APP_ID SECRET SUBSCRIPTION RESOURCE_GROUP REGISTRY
// NODE_EXTRA_CA_CERTS names the server's CA. Prints one JSON object with what the SDK saw; a
// failed step is recorded as {"error": …} and the script goes on.
import { ClientSecretCredential } from "@azure/identity";
import { ContainerRegistryManagementClient } from "@azure/arm-containerregistry";

const [endpoint, tenant, appId, secret, subscription, group, name] = process.argv.slice(2);
const credential = new ClientSecretCredential(tenant, appId, secret, {
  authorityHost: endpoint,
  disableInstanceDiscovery: true,
});
const client = new ContainerRegistryManagementClient(credential, subscription, { endpoint });

const out = {};
async function step(key, f) {
  try {
    out[key] = await f();
  } catch (e) {
    out[key] = { error: e.code ?? e.name, status: e.statusCode, message: String(e.message).slice(0, 500) };
  }
}
async function collect(iterable, f) {
  const all = [];
  for await (const item of iterable) all.push(f(item));
  return all.sort();
}

await step("scope", async () => {
  const token = await credential.getToken(`${endpoint}/.default`);
  const claims = JSON.parse(Buffer.from(token.token.split(".")[1], "base64url").toString());
  return claims.aud;
});
await step("created", async () => {
  const r = await client.registries.create(group, name, { location: "westus", sku: { name: "Premium" } });
  return { name: r.name, loginServer: r.loginServer, sku: r.sku?.name, state: r.provisioningState };
});
await step("fetched", async () => (await client.registries.get(group, name)).id);
await step("listedInGroup", () => collect(client.registries.listByResourceGroup(group), (r) => r.name));
await step("listed", () => collect(client.registries.list(), (r) => r.name));
await step("missing", async () => {
  try {
    await client.registries.get(group, "nosuchregistry");
    return "found";
  } catch (e) {
    return e.code ?? e.statusCode;
  }
});
console.log(JSON.stringify(out));
