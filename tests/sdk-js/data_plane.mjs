// The Azure SDK for JavaScript on Wharf's data plane: @azure/container-registry's
// ContainerRegistryClient with @azure/identity's ClientSecretCredential, on a nested repository
// name. Every call on the repository puts the encoded name in the path (`team%2Fsvc%2Fapi`).
//
// Usage: node data_plane.mjs AUTHORITY TENANT APP_ID SECRET REGISTRY_ENDPOINT REPOSITORY
// NODE_EXTRA_CA_CERTS names the server's CA. The repository must hold one manifest tagged v1
// and v2. Prints one JSON object; a failed step is recorded as {"error": …} and the script goes on.
import { ClientSecretCredential } from "@azure/identity";
import { ContainerRegistryClient } from "@azure/container-registry";

const [authority, tenant, appId, secret, registryEndpoint, repository] = process.argv.slice(2);
const credential = new ClientSecretCredential(tenant, appId, secret, {
  authorityHost: authority,
  disableInstanceDiscovery: true,
});
const client = new ContainerRegistryClient(registryEndpoint, credential, {
  audience: "https://containerregistry.azure.net",
});

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

const repo = client.getRepository(repository);
await step("repositories", () => collect(client.listRepositoryNames(), (n) => n));
await step("repositoryProperties", async () => {
  const p = await repo.getProperties();
  return { name: p.name, manifestCount: p.manifestCount, tagCount: p.tagCount };
});
await step("tags", () => collect(repo.getArtifact("v1").listTagProperties(), (t) => t.name));
await step("manifests", () => collect(repo.listManifestProperties(), (m) => m.digest));
await step("manifest", async () => {
  const m = await repo.getArtifact("v1").getManifestProperties();
  return { digest: m.digest, tags: [...(m.tags ?? [])].sort(), repositoryName: m.repositoryName };
});
await step("tagProperties", async () => {
  const t = await repo.getArtifact("v1").getTagProperties("v2");
  return { name: t.name, digest: t.digest };
});
await step("lockedManifest", async () => {
  const m = await repo.getArtifact("v1").updateManifestProperties({ canDelete: false });
  return { canDelete: m.canDelete };
});
await step("lockedDelete", async () => {
  try {
    await repo.getArtifact("v1").delete();
    return "deleted";
  } catch (e) {
    return e.statusCode;
  }
});
await step("unlockedManifest", async () => {
  const m = await repo.getArtifact("v1").updateManifestProperties({ canDelete: true });
  return { canDelete: m.canDelete };
});
await step("readOnlyRepository", async () => {
  const p = await repo.updateProperties({ canWrite: false });
  return { canWrite: p.canWrite };
});
await step("writableRepository", async () => {
  const p = await repo.updateProperties({ canWrite: true });
  return { canWrite: p.canWrite };
});
await step("deletedTag", async () => {
  await repo.getArtifact("v1").deleteTag("v2");
  return collect(repo.getArtifact("v1").listTagProperties(), (t) => t.name);
});
await step("deletedRepository", async () => {
  await client.deleteRepository(repository);
  return collect(client.listRepositoryNames(), (n) => n);
});
console.log(JSON.stringify(out));
