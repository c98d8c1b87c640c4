// Acceptance of the elasticsearch strategy on the OpenSearch 2.19 fixture: a hot snapshot of three
// indices (21,000 documents) that never stops the node; a restore with CONFLICT=overwrite after
// deleting one index and changing another brings back exactly the snapshot's documents; a
// CONFLICT=rename restore leaves the live index alone; a snapshot that cannot complete and a
// repository that cannot be registered fail alone and leave no snapshot or registration behind;
// on a two-node cluster whose second node lacks the repository volume and its path.repo entry the
// error names the node, the setting and the mount while the other services are still backed up,
// and with a volume both nodes share the cluster is snapshotted once for both services.
// One OpenSearch cluster at a time: the single node is removed before the two nodes start.
import assert from "node:assert/strict";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { backupsOf, ComposeProject, composure, docker, fixtureImage, requireDocker, tempDir } from "../support/composure.ts";
import { bulk, bulkBody, contentHash, es, esOk, waitForHealth } from "../support/opensearch.ts";

const image = fixtureImage("opensearch");
const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1);

const repositories = async (container: string) => Object.keys((await esOk(container, "GET", "/_snapshot")) ?? {});

function runsOf(destination: string, projectName: string): string[] {
  const dir = path.join(destination, projectName);
  return existsSync(dir) ? readdirSync(dir).filter((name) => /^\d{8}T\d{6}Z(-\d+)?$/.test(name) && existsSync(path.join(dir, name, "manifest.json"))).sort() : [];
}
const manifestOf = (destination: string, projectName: string, runId: string) => backupsOf(path.join(destination, projectName)).manifestOf(runId);
const serviceOf = (manifest: any, name: string) => manifest.services.find((service: any) => service.name === name);

/** Snapshot names in the repository directory, read through a temporary read-only registration. */
async function snapshotsOnDisk(container: string, location: string): Promise<string[]> {
  await esOk(container, "PUT", "/_snapshot/test-inspect", JSON.stringify({ type: "fs", settings: { location, readonly: true } }));
  try {
    return ((await esOk(container, "GET", "/_snapshot/test-inspect/_all")).snapshots as { snapshot: string }[]).map((entry) => entry.snapshot).sort();
  } finally {
    await esOk(container, "DELETE", "/_snapshot/test-inspect");
  }
}

const nodeEnvironment = `
      - cluster.name=composure
      - bootstrap.memory_lock=false
      - OPENSEARCH_JAVA_OPTS=-Xms512m -Xmx512m`;

describe("elasticsearch strategy on one OpenSearch node", { timeout: 420_000 }, () => {
  const project = new ComposeProject(
    `cmpt-es${process.pid}`,
    `
version: "3.8"
services:
  search:
    image: ${image}
    environment:${nodeEnvironment}
      - node.name=search
      - discovery.type=single-node
      - path.repo=/snapshots
    volumes: ["data:/usr/share/opensearch/data", "snapshots:/snapshots"]
  files:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["files:/files"]
volumes: { data: {}, snapshots: {}, files: {} }
`,
  );
  const destination = tempDir("elasticsearch-dest");
  const env = { PROJECT: project.name, DESTINATION: destination };
  const indices = { orders: 8000, customers: 7000, events: 6000 };
  let node: string;
  let snapshotHashes: Record<string, string> = {};
  let backupRun: string;

  before(async () => {
    await requireDocker();
    const started = performance.now();
    await project.up();
    node = await project.containerId("search");
    await waitForHealth(node, 1);
    console.log(`# one node ready in ${seconds(started)} s`);
    const loading = performance.now();
    for (const [index, count] of Object.entries(indices)) {
      await esOk(node, "PUT", `/${index}`, JSON.stringify({ settings: { number_of_shards: 1, number_of_replicas: index === "events" ? 1 : 0 } }));
      await bulk(node, bulkBody(index, 1, count));
    }
    // A hidden index: left out of the snapshot unless named.
    await esOk(node, "PUT", "/.composure-test-hidden", JSON.stringify({ settings: { number_of_replicas: 0, "index.hidden": true } }));
    await esOk(node, "POST", "/_refresh");
    await docker("exec", await project.containerId("files"), "sh", "-c", "echo hello > /files/greeting");
    console.log(`# 21,000 documents in 3 indices loaded in ${seconds(loading)} s`);
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("a hot backup snapshots every index without stopping the node and leaves no registration behind", async () => {
    const startedAt = await project.startedAt("search");
    for (const index of Object.keys(indices)) snapshotHashes[index] = await contentHash(node, index);
    assert.equal(snapshotHashes.orders.split(":")[0], "8000");
    const started = performance.now();
    const outcome = await composure("backup", env);
    console.log(`# backup in ${seconds(started)} s`);
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.equal(await project.startedAt("search"), startedAt, "the node was never restarted");
    backupRun = runsOf(destination, project.name).at(-1)!;
    const manifest = manifestOf(destination, project.name, backupRun);
    assert.equal(manifest.outcome, "success");
    const search = serviceOf(manifest, "search");
    assert.equal(search.strategy, "elasticsearch");
    assert.equal(search.downtimeSeconds, 0);
    assert.deepEqual(search.stopped, []);
    assert.equal(search.artifacts.length, 1);
    const facts = search.artifacts[0].facts;
    assert.equal(facts.kind, "snapshot-repository");
    assert.equal(facts.snapshot, `composure-${backupRun.toLowerCase()}`);
    assert.deepEqual(facts.indices, ["customers", "events", "orders"]);
    assert.deepEqual(facts.documents, { customers: 7000, events: 6000, orders: 8000 });
    assert.equal(facts.exactCounts, true);
    assert.equal(serviceOf(manifest, "files").status, "ok");
    assert.deepEqual(await repositories(node), [], "no repository registration is left");
    assert.deepEqual(await snapshotsOnDisk(node, "/snapshots/composure"), [facts.snapshot], "the live repository keeps the newest snapshot (keep_snapshots=1)");
    assert.ok(/snapshot composure-\S+ of 3 indices, 21,000 documents/.test(outcome.stderr), outcome.stderr);
  });

  test("after deleting one index and changing another, CONFLICT=overwrite brings back exactly the snapshot's documents", async () => {
    await esOk(node, "DELETE", "/events");
    await esOk(node, "POST", "/orders/_delete_by_query?refresh=true", JSON.stringify({ query: { range: { n: { lte: 500 } } } }));
    await bulk(node, bulkBody("orders", 7000, 2000, "v2"));
    await esOk(node, "POST", "/orders/_refresh");
    assert.notEqual(await contentHash(node, "orders"), snapshotHashes.orders);

    const preview = await composure("restore", { ...env, RUN: backupRun, DRY_RUN: "1", CONFLICT: "overwrite" });
    assert.equal(preview.code, 0, preview.stderr);
    assert.match(preview.stdout, /index events \(6,000 documents\): does not exist, restore it/);
    assert.match(preview.stdout, /index orders \(8,000 documents\): exists, snapshot it into the rescue run, then delete it/);
    assert.match(preview.stdout, /CONFLICT=skip would restore events; rename would create restored-customers, restored-events, restored-orders; error would refuse \(customers, orders exist\)/);

    const started = performance.now();
    const outcome = await composure("restore", { ...env, RUN: backupRun, FORCE: "1", CONFLICT: "overwrite" });
    console.log(`# restore with overwrite in ${seconds(started)} s`);
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.match(outcome.stderr, /restored 3 indices .* 21,000 documents, as recorded at backup time/);
    for (const index of Object.keys(indices)) assert.equal(await contentHash(node, index), snapshotHashes[index], `index ${index} equals the snapshot`);
    assert.deepEqual(await repositories(node), [], "the temporary read-only repository is unregistered");
    assert.deepEqual((await docker("exec", node, "ls", "/snapshots")).split("\n"), ["composure"], "the unpacked repository is removed");
    const rescue = readdirSync(path.join(destination, project.name)).find((name) => name.endsWith("-rescue"));
    assert.ok(rescue, "the overwritten indices were kept in a rescue run");
    const rescued = serviceOf(manifestOf(destination, project.name, rescue!), "search").artifacts[0].facts;
    assert.deepEqual(rescued.indices, ["customers", "orders"]);
    assert.deepEqual(await snapshotsOnDisk(node, "/snapshots/composure"), [`composure-${backupRun.toLowerCase()}`], "the rescue snapshot is not kept in the live repository");
  });

  test("CONFLICT=rename restores one index under a new name and leaves the live index alone", async () => {
    await bulk(node, bulkBody("customers", 7001, 300, "v3"));
    await esOk(node, "POST", "/customers/_refresh");
    const live = await contentHash(node, "customers");
    const outcome = await composure("restore", { ...env, RUN: backupRun, FORCE: "1", CONFLICT: "rename", SERVICE: "search", VOLUME: "customers" });
    assert.equal(outcome.code, 0, outcome.stderr);
    assert.match(outcome.stderr, /restored 1 index \(customers as restored-customers\)/);
    assert.equal(await contentHash(node, "customers"), live, "the live index is untouched");
    // The renamed copy holds the snapshot's documents (the hash covers ids and sources, not the index name).
    assert.equal(await contentHash(node, "restored-customers"), snapshotHashes.customers);
    assert.equal(await contentHash(node, "restored-orders"), "missing", "only the named index is restored");
    const aliases = await esOk(node, "GET", "/restored-customers/_alias");
    assert.deepEqual(aliases["restored-customers"].aliases, {});
    // A second rename would collide with the first copy: refused, nothing changed.
    const again = await composure("restore", { ...env, RUN: backupRun, FORCE: "1", CONFLICT: "rename", SERVICE: "search", VOLUME: "customers" });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /index restored-customers \(the renamed copy of customers\) exists already/);
    assert.deepEqual(await repositories(node), []);
  });

  test("a snapshot that cannot complete fails the service alone and leaves no snapshot or registration behind", async () => {
    // An index whose primary can never be assigned: the snapshot cannot be complete.
    await esOk(node, "PUT", "/unassigned?wait_for_active_shards=0", JSON.stringify({ settings: { number_of_replicas: 0, "index.routing.allocation.require._name": "nowhere" } }));
    try {
      const outcome = await composure("backup", env);
      assert.notEqual(outcome.code, 0);
      const runId = runsOf(destination, project.name).at(-1)!;
      assert.notEqual(runId, backupRun);
      const manifest = manifestOf(destination, project.name, runId);
      assert.equal(manifest.outcome, "partial");
      const search = serviceOf(manifest, "search");
      assert.equal(search.status, "failed");
      assert.match(search.error, /unassigned/);
      assert.deepEqual(search.artifacts, []);
      assert.equal(serviceOf(manifest, "files").status, "ok", "the other services are still backed up");
      assert.deepEqual(await repositories(node), [], "no registration is left");
      assert.deepEqual(await snapshotsOnDisk(node, "/snapshots/composure"), [`composure-${backupRun.toLowerCase()}`], "no snapshot of the failed run is left");
    } finally {
      await esOk(node, "DELETE", "/unassigned");
    }
  });

  test("a repository the node cannot write fails the registration, which is removed again", async () => {
    // OpenSearch leaves a repository registered when its verification fails: composure must remove it.
    await docker("exec", node, "chmod", "555", "/snapshots/composure");
    try {
      const outcome = await composure("backup", env);
      assert.notEqual(outcome.code, 0);
      const search = serviceOf(manifestOf(destination, project.name, runsOf(destination, project.name).at(-1)!), "search");
      assert.equal(search.status, "failed");
      assert.match(search.error, /registering the snapshot repository composure at \/snapshots\/composure failed: .*access_denied_exception/);
      assert.deepEqual(await repositories(node), [], "the failed registration is removed");
    } finally {
      await docker("exec", node, "chmod", "755", "/snapshots/composure");
    }
  });
});

describe("elasticsearch strategy on a two-node OpenSearch cluster", { timeout: 420_000 }, () => {
  // Both nodes share `snapshots`; only os1 mounts `other` and lists it in path.repo. A backup
  // told to use `other` (composure.yml) must fail naming os2, its path.repo and its mount.
  const node = (name: string, pathRepo: string, volumes: string) => `
  ${name}:
    image: ${image}
    hostname: ${name}
    environment:${nodeEnvironment}
      - node.name=${name}
      - discovery.seed_hosts=os1,os2
      - cluster.initial_cluster_manager_nodes=os1,os2
      - path.repo=${pathRepo}
    volumes: [${volumes}]`;
  const project = new ComposeProject(
    `cmpt-es2n${process.pid}`,
    `
version: "3.8"
services:${node("os1", "/snapshots,/other", '"data-os1:/usr/share/opensearch/data", "snapshots:/snapshots", "other:/other"')}${node("os2", "/snapshots", '"data-os2:/usr/share/opensearch/data", "snapshots:/snapshots"')}
  files:
    image: $BUSYBOX
    init: true
    command: ["sleep", "100000"]
    volumes: ["files:/files"]
volumes: { data-os1: {}, data-os2: {}, snapshots: {}, other: {}, files: {} }
`,
  );
  const destination = tempDir("elasticsearch-2n-dest");
  const env = { PROJECT: project.name, DESTINATION: destination };
  let os1: string;

  before(async () => {
    await requireDocker();
    const started = performance.now();
    await project.up();
    os1 = await project.containerId("os1");
    await waitForHealth(os1, 2);
    console.log(`# two nodes ready in ${seconds(started)} s`);
    await esOk(os1, "PUT", "/tickets", JSON.stringify({ settings: { number_of_shards: 2, number_of_replicas: 1 } }));
    await bulk(os1, bulkBody("tickets", 1, 3000));
    await esOk(os1, "POST", "/_refresh");
  });
  after(async () => {
    await project.down().catch(() => undefined);
  });

  test("a repository volume the second node does not mount fails with the node, the setting and the mount to add, and the other services are backed up", async () => {
    const config = path.join(tempDir("elasticsearch-2n-config"), "composure.yml");
    writeFileSync(config, "services:\n  os1: { options: { repository_volume: other } }\n  os2: { options: { repository_volume: other } }\n");
    const outcome = await composure("backup", { ...env, CONFIG: config });
    assert.notEqual(outcome.code, 0);
    const manifest = manifestOf(destination, project.name, runsOf(destination, project.name).at(-1)!);
    assert.equal(manifest.outcome, "partial");
    for (const name of ["os1", "os2"]) {
      const record = serviceOf(manifest, name);
      assert.equal(record.status, "failed", `${name} runs a node of the cluster that cannot be snapshotted`);
      assert.match(record.error, /node os2 \(service os2, container [^)]+\) does not have \/other in path\.repo \(it has \/snapshots\): set path\.repo=\/snapshots,\/other in the environment of service os2 in the compose file/);
      assert.match(record.error, /node os2 \(service os2, container [^)]+\) does not mount the shared repository volume other at \/other \(nothing is mounted at \/other\): add "- other:\/other" to the volumes of service os2 in the compose file/);
      assert.doesNotMatch(record.error, /node os1/);
    }
    assert.equal(serviceOf(manifest, "files").status, "ok", "the other services are still backed up");
    assert.deepEqual(await repositories(os1), [], "nothing was registered");
  });

  test("with the volume both nodes share the cluster is snapshotted once, by the first of its services", async () => {
    const outcome = await composure("backup", env);
    assert.equal(outcome.code, 0, outcome.stderr);
    const manifest = manifestOf(destination, project.name, runsOf(destination, project.name).at(-1)!);
    const leader = serviceOf(manifest, "os1");
    assert.equal(leader.artifacts.length, 1);
    const facts = leader.artifacts[0].facts;
    assert.deepEqual(facts.nodes, ["os1", "os2"]);
    assert.deepEqual(facts.services, ["os1", "os2"]);
    assert.equal(facts.repositoryPath, "/snapshots");
    assert.deepEqual(facts.documents, { tickets: 3000 });
    assert.equal(serviceOf(manifest, "os2").status, "ok");
    assert.deepEqual(serviceOf(manifest, "os2").artifacts, []);
    assert.match(outcome.stderr, /os2: node\(s\) of cluster composure, whose snapshot service os1 takes in this run/);
    assert.deepEqual(await repositories(os1), []);
  });
});
