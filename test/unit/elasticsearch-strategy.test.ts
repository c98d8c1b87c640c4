// The elasticsearch strategy without Docker: image detection, options from label strings, the
// curl config that keeps credentials out of argv, error reasons, the cluster checks and their
// messages, and the snapshot rules on a fake API (PARTIAL with HTTP 200 is a failure and is
// deleted, a failed registration is removed, retention keeps the newest snapshots).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ContainerInfo, MountInfo } from "../../scripts/lib/docker/containers.ts";
import type { ProjectInfo, ServiceInfo } from "../../scripts/lib/compose/discover.ts";
import { documentDifference, indicesExpression, snapshotNameFor } from "../../scripts/lib/strategies/elasticsearch/backup.ts";
import { clusterProblems, findRepositoryPlace, pathRepoOf, type ClusterView, type NodeInfo } from "../../scripts/lib/strategies/elasticsearch/cluster.ts";
import { credentialsFor, curlConfig, parseCurlOutput, reasonOf, type EsClient, type EsResponse, type Method } from "../../scripts/lib/strategies/elasticsearch/http.ts";
import { elasticsearchOptions, isElasticsearchImage, parseConflict } from "../../scripts/lib/strategies/elasticsearch/options.ts";
import { planRestore, selectIndices, summarisePolicy } from "../../scripts/lib/strategies/elasticsearch/restore.ts";
import { applyRetention, registerRepository, takeSnapshot } from "../../scripts/lib/strategies/elasticsearch/snapshot.ts";
import { matchesVolume } from "../../scripts/lib/pipeline/restore.ts";

type Handler = (method: Method, path: string, body?: unknown) => EsResponse | undefined;

/** A fake API: the first handler that answers wins; every request is recorded. */
function fakeClient(...handlers: Handler[]): EsClient & { calls: string[] } {
  const calls: string[] = [];
  return {
    where: "fake",
    calls,
    async request(method, path, body) {
      calls.push(`${method} ${path}`);
      for (const handler of handlers) {
        const answer = handler(method, path, body);
        if (answer) return answer;
      }
      return { status: 404, body: JSON.stringify({ error: { type: "not_found", reason: `no handler for ${method} ${path}` }, status: 404 }) };
    },
  };
}
const json = (status: number, value: unknown): EsResponse => ({ status, body: JSON.stringify(value) });
const ok = (value: unknown = { acknowledged: true }) => json(200, value);

describe("elasticsearch strategy: detection and options", () => {
  test("Elasticsearch and OpenSearch images are detected, other images are not", () => {
    for (const image of ["elasticsearch:8.15.0", "docker.elastic.co/elasticsearch/elasticsearch:8.15.0", "bitnami/elasticsearch:8", "opensearchproject/opensearch:2.19.1", "composure-fixture/opensearch:latest", "registry:5000/search/elasticsearch@sha256:abc"]) {
      assert.ok(isElasticsearchImage(image), image);
    }
    for (const image of ["opensearchproject/opensearch-dashboards:2", "kibana:8", "postgres:16", "someone/opensearch", "elasticsearch-exporter"]) {
      assert.ok(!isElasticsearchImage(image), image);
    }
  });

  test("label strings are coerced and unknown options are refused", () => {
    const parsed = elasticsearchOptions.parse({ keep_snapshots: "3", include_global_state: "true", indices: "logs-*, orders", exclude_indices: "logs-debug", repository_path: "/snapshots//es/", conflict: "Rename" });
    assert.equal(parsed.keep_snapshots, 3);
    assert.equal(parsed.include_global_state, true);
    assert.deepEqual(parsed.indices, ["logs-*", "orders"]);
    assert.equal(parsed.repository_path, "/snapshots/es");
    assert.equal(parsed.conflict, "rename");
    assert.equal(parsed.url, "http://localhost:9200");
    assert.equal(elasticsearchOptions.safeParse({ keep: 2 }).success, false);
    assert.equal(elasticsearchOptions.safeParse({ url: "http://elastic:secret@localhost:9200" }).success, false, "credentials in the URL are refused");
    assert.equal(elasticsearchOptions.safeParse({ password_env: "not a name" }).success, false);
    assert.equal(parseConflict(" skip ", "CONFLICT"), "skip");
    assert.throws(() => parseConflict("replace", "CONFLICT"), /CONFLICT must be one of skip, overwrite, rename, error/);
  });

  test("the snapshot name and the index expression follow the run and the options", () => {
    assert.equal(snapshotNameFor("20260101T020304Z-2"), "composure-20260101t020304z-2");
    assert.equal(indicesExpression({}), "*,-.*", "every index but hidden and system ones");
    assert.equal(indicesExpression({ indices: ["a", "b*", ".kibana"] }), "a,b*,.kibana");
    assert.equal(indicesExpression({ exclude_indices: ["tmp-*"] }), "*,-.*,-tmp-*");
    assert.equal(indicesExpression({ indices: ["-tmp-*"] }), "*,-.*,-tmp-*");
  });
});

describe("elasticsearch strategy: HTTP through curl", () => {
  const container = (env: string[]): ContainerInfo => ({ id: "c1", name: "shop_search_1", image: "elasticsearch:8", labels: {}, running: true, startedAt: "", mounts: [], networkMode: "", links: [], env, addresses: [] });

  test("everything curl needs, credentials included, goes into the config it reads from stdin", () => {
    const config = curlConfig({ url: "http://localhost:9200/_snapshot/composure", method: "PUT", body: '{"settings":{"location":"/s/a\\"b"}}', user: "elastic", password: 'p"w\\d', timeoutSeconds: 60 });
    assert.match(config, /^url = "http:\/\/localhost:9200\/_snapshot\/composure"$/m);
    assert.match(config, /^request = PUT$/m);
    assert.match(config, /^data-binary = "\{\\"settings\\":\{\\"location\\":\\"\/s\/a\\\\\\"b\\"\}\}"$/m);
    assert.match(config, /^user = "elastic:p\\"w\\\\d"$/m);
    assert.deepEqual(parseCurlOutput('{"acknowledged":true}\n200'), { status: 200, body: '{"acknowledged":true}' });
    assert.deepEqual(parseCurlOutput("\n000"), { status: 0, body: "" });
  });

  test("credentials come from the variables named in the options, else ELASTIC_PASSWORD of the container", () => {
    assert.deepEqual(credentialsFor(container(["ELASTIC_PASSWORD=s3cret"]), {}), { user: "elastic", password: "s3cret", from: "ELASTIC_PASSWORD of the container" });
    assert.equal(credentialsFor(container([]), {}), undefined);
    const named = credentialsFor(container(["BACKUP_USER=backup", "BACKUP_PASSWORD=pw"]), { user_env: "BACKUP_USER", password_env: "BACKUP_PASSWORD" });
    assert.deepEqual(named, { user: "backup", password: "pw", from: "BACKUP_USER and BACKUP_PASSWORD" });
    assert.throws(() => credentialsFor(container([]), { password_env: "NOPE_PASSWORD_VAR" }), /password_env names NOPE_PASSWORD_VAR, which is set neither/);
  });

  test("error reasons keep the chain of causes down to the innermost exception", () => {
    const body = { error: { type: "repository_verification_exception", reason: "[composure] path  is not accessible on cluster-manager node", caused_by: { type: "exception", reason: "failed to create blob container", caused_by: { type: "access_denied_exception", reason: "/snapshots/composure/tests-x" } } }, status: 500 };
    assert.equal(reasonOf(json(500, body)).reason, "[composure] path  is not accessible on cluster-manager node: failed to create blob container: access_denied_exception: /snapshots/composure/tests-x");
    assert.equal(reasonOf({ status: 502, body: "Bad Gateway" }).reason, "Bad Gateway");
  });
});

describe("elasticsearch strategy: cluster checks", () => {
  const mount = (source: string, destination: string): MountInfo => ({ type: "volume", source, destination, readOnly: false });
  const container = (name: string, mounts: MountInfo[]): ContainerInfo => ({ id: `${name}-id`, name: `shop_${name}_1`, image: "opensearchproject/opensearch:2", labels: {}, running: true, startedAt: "", mounts, networkMode: "", links: [], env: [], addresses: [] });
  const service = (name: string, containers: ContainerInfo[]): ServiceInfo => ({ project: "shop", name, image: "opensearchproject/opensearch:2", labels: {}, containers, dependsOn: [] });
  const node = (id: string, pathRepo: string[], roles = ["cluster_manager", "data"]): NodeInfo => ({ id, name: id, roles, pathRepo });
  const defaults = elasticsearchOptions.parse({});

  function view(nodes: NodeInfo[], members: [string, ServiceInfo][]): { view: ClusterView; project: ProjectInfo } {
    const services = [...new Set(members.map(([, entry]) => entry))];
    const [localId, localService] = members[0];
    return {
      project: { name: "shop", services },
      view: {
        client: fakeClient(),
        container: localService.containers[0],
        service: localService,
        name: "shop-cluster",
        uuid: "uuid-1",
        engine: "opensearch",
        version: "2.19.1",
        nodes,
        localNode: localId,
        members: new Map(members.map(([id, entry]) => [id, { service: entry, container: entry.containers[0] }])),
      },
    };
  }

  test("a single node without path.repo is told which setting and which mount to add", () => {
    const search = service("search", [container("search", [mount("shop_data", "/usr/share/opensearch/data")])]);
    const { view: cluster, project } = view([node("search", [])], [["search", search]]);
    assert.throws(() => findRepositoryPlace(cluster, project, defaults), /node search \(service search, container shop_search_1\) has no path\.repo setting: add path\.repo=\/snapshots to the environment of service search in the compose file and mount a shared volume there \("- snapshots:\/snapshots" under its volumes\)/);
  });

  test("path.repo without a volume under it is reported with the volume line to add", () => {
    const search = service("search", [container("search", [])]);
    const { view: cluster, project } = view([node("search", ["/snapshots"])], [["search", search]]);
    assert.throws(() => findRepositoryPlace(cluster, project, defaults), /path\.repo of node search .* is \/snapshots, but no volume is mounted there: add "- snapshots:\/snapshots" to the volumes of service search/);
  });

  test("a second node without path.repo and without the shared volume gets one line each, naming node and service", () => {
    const os1 = service("os1", [container("os1", [mount("shop_snapshots", "/snapshots")])]);
    const os2 = service("os2", [container("os2", [mount("shop_elsewhere", "/snapshots")])]);
    const { view: cluster, project } = view([node("os1", ["/snapshots"]), node("os2", [])], [["os1", os1], ["os2", os2]]);
    const place = findRepositoryPlace(cluster, project, defaults);
    assert.equal(place.location, "/snapshots/composure");
    assert.equal(place.displayName, "snapshots");
    assert.deepEqual(clusterProblems(cluster, place, "shop"), [
      "node os2 (service os2, container shop_os2_1) does not have /snapshots in path.repo (it has no path.repo): set path.repo=/snapshots in the environment of service os2 in the compose file",
      'node os2 (service os2, container shop_os2_1) does not mount the shared repository volume snapshots at /snapshots (it mounts elsewhere at /snapshots instead): add "- snapshots:/snapshots" to the volumes of service os2 in the compose file',
    ]);
  });

  test("the service's own node may lack the setting: the place comes from another node and the problem is reported for it", () => {
    const os1 = service("os1", [container("os1", [mount("shop_snapshots", "/snapshots")])]);
    const os2 = service("os2", [container("os2", [])]);
    const { view: cluster, project } = view([node("os1", ["/snapshots"]), node("os2", [])], [["os2", os2], ["os1", os1]]);
    const place = findRepositoryPlace(cluster, project, defaults);
    assert.equal(place.root, "/snapshots");
    assert.equal(clusterProblems(cluster, place, "shop").length, 2);
  });

  test("nodes without a container composure can match are named; coordinating-only nodes need no repository", () => {
    const os1 = service("os1", [container("os1", [mount("shop_snapshots", "/snapshots")])]);
    const { view: cluster, project } = view([node("os1", ["/snapshots"]), node("remote", ["/snapshots"]), node("coordinator", [], ["ingest"])], [["os1", os1]]);
    const problems = clusterProblems(cluster, findRepositoryPlace(cluster, project, defaults), "shop");
    assert.equal(problems.length, 1);
    assert.match(problems[0], /^node remote runs in no container composure can match in project shop: give its service the label composure\.elasticsearch\.cluster=shop-cluster/);
  });

  test("repository_volume and repository_path choose the place; path.repo lists are read in every form", () => {
    const search = service("search", [container("search", [mount("shop_snapshots", "/snapshots"), mount("shop_backup", "/backup")])]);
    const { view: cluster, project } = view([node("search", ["/snapshots", "/backup/es"])], [["search", search]]);
    const byVolume = findRepositoryPlace(cluster, project, elasticsearchOptions.parse({ repository_volume: "backup" }));
    assert.deepEqual([byVolume.root, byVolume.subpath, byVolume.location, byVolume.mount.source], ["/backup/es", "es", "/backup/es/composure", "shop_backup"]);
    const byPath = findRepositoryPlace(cluster, project, elasticsearchOptions.parse({ repository_path: "/snapshots/prod" }));
    assert.deepEqual([byPath.root, byPath.subpath, byPath.mount.source], ["/snapshots/prod", "prod", "shop_snapshots"]);
    assert.throws(() => findRepositoryPlace(cluster, project, elasticsearchOptions.parse({ repository_volume: "nope" })), /service search does not mount the volume nope/);
    assert.deepEqual(pathRepoOf("[/a, /b/]"), ["/a", "/b"]);
    assert.deepEqual(pathRepoOf(["/a"]), ["/a"]);
    assert.deepEqual(pathRepoOf(undefined), []);
  });
});

describe("elasticsearch strategy: snapshot rules on a fake API", () => {
  const registration: Handler = (method, path) => (path.startsWith("/_snapshot/composure") && !path.includes("/composure-") ? ok() : undefined);

  test("a PARTIAL snapshot answered with HTTP 200 is a failure, and the snapshot is deleted", async () => {
    const client = fakeClient(
      (method, path) => (method === "PUT" && path.startsWith("/_snapshot/composure/composure-1") ? ok({ accepted: true }) : undefined),
      (method, path) => (method === "GET" && path === "/_snapshot/composure/composure-1" ? ok({ snapshots: [{ snapshot: "composure-1", state: "PARTIAL", indices: ["a", "b"], shards: { total: 2, failed: 1, successful: 1 }, failures: [{ index: "b", shard_id: 0, reason: "IndexShardSnapshotFailedException[disk]" }] }] }) : undefined),
      (method, path) => (method === "DELETE" ? ok() : undefined),
    );
    await assert.rejects(takeSnapshot(client, { repository: "composure", snapshot: "composure-1", includeGlobalState: false, timeoutMs: 5000, pollMs: 1 }), /snapshot composure-1 ended PARTIAL \(1 of 2 shards failed\); b\[0\]: IndexShardSnapshotFailedException\[disk\]/);
    assert.ok(client.calls.includes("DELETE /_snapshot/composure/composure-1"));
    assert.ok(client.calls.every((call) => !call.includes("partial=true")));
  });

  test("SUCCESS with a failed shard is a failure too; SUCCESS with none is returned", async () => {
    let state = { state: "SUCCESS", shards: { total: 3, failed: 1, successful: 2 } };
    const client = fakeClient(
      (method, path) => (method === "PUT" ? ok({ accepted: true }) : undefined),
      (method) => (method === "GET" ? ok({ snapshots: [{ snapshot: "s", indices: ["a"], ...state }] }) : undefined),
      (method) => (method === "DELETE" ? ok() : undefined),
    );
    await assert.rejects(takeSnapshot(client, { repository: "composure", snapshot: "s", includeGlobalState: false, timeoutMs: 5000, pollMs: 1 }), /ended SUCCESS \(1 of 3 shards failed\)/);
    state = { state: "SUCCESS", shards: { total: 3, failed: 0, successful: 3 } };
    const info = await takeSnapshot(client, { repository: "composure", snapshot: "s", includeGlobalState: false, timeoutMs: 5000, pollMs: 1 });
    assert.equal(info.state, "SUCCESS");
  });

  test("a snapshot refused outright is deleted anyway (nothing may dangle)", async () => {
    const client = fakeClient(
      (method) => (method === "PUT" ? json(500, { error: { type: "snapshot_exception", reason: "Indices don't have primary shards [red]" }, status: 500 }) : undefined),
      (method) => (method === "DELETE" ? json(404, { error: { type: "snapshot_missing_exception", reason: "missing" } }) : undefined),
    );
    await assert.rejects(takeSnapshot(client, { repository: "composure", snapshot: "s", includeGlobalState: false, timeoutMs: 5000 }), /answered HTTP 500: Indices don't have primary shards \[red\]/);
    assert.deepEqual(client.calls, ["PUT /_snapshot/composure/s?wait_for_completion=false", "DELETE /_snapshot/composure/s"]);
  });

  test("a registration whose verification fails is removed again; verification is never skipped", async () => {
    const client = fakeClient(
      (method, path) => (method === "PUT" && path === "/_snapshot/composure" ? ok() : undefined),
      (method, path) => (path.endsWith("/_verify") ? json(500, { error: { type: "repository_verification_exception", reason: "[composure] a file written by the cluster-manager to the store [/snapshots/composure] cannot be accessed on the node [os2]. This might indicate that the store [/snapshots/composure] is not shared between this node and the cluster-manager node" } }) : undefined),
      (method) => (method === "DELETE" ? ok() : undefined),
    );
    await assert.rejects(registerRepository(client, "composure", "/snapshots/composure"), /registering the snapshot repository composure at \/snapshots\/composure failed: .*not shared.*: every master and data node must list the directory in path\.repo and mount the same shared volume there/);
    assert.deepEqual(client.calls, ["PUT /_snapshot/composure", "POST /_snapshot/composure/_verify", "DELETE /_snapshot/composure"]);
    assert.ok(client.calls.every((call) => !call.includes("verify=false")));
  });

  test("a registration refused by PUT is removed too (it may stay registered anyway)", async () => {
    const client = fakeClient(
      (method, path) => (method === "PUT" && path === "/_snapshot/composure" ? json(500, { error: { type: "repository_exception", reason: "[composure] location [/x] doesn't match any of the locations specified by path.repo" } }) : undefined),
      registration,
    );
    await assert.rejects(registerRepository(client, "composure", "/x"), /doesn't match any of the locations specified by path\.repo/);
    assert.deepEqual(client.calls, ["PUT /_snapshot/composure", "DELETE /_snapshot/composure"]);
  });

  test("retention keeps the newest backup snapshots and leaves rescue and foreign snapshots alone", async () => {
    const snapshots = [
      { snapshot: "composure-20260101t000000z", start_time_in_millis: 1, state: "SUCCESS", indices: [] },
      { snapshot: "composure-20260102t000000z", start_time_in_millis: 2, state: "SUCCESS", indices: [] },
      { snapshot: "composure-20260103t000000z-2", start_time_in_millis: 3, state: "SUCCESS", indices: [] },
      { snapshot: "composure-rescue-20260102t000000z-abc", start_time_in_millis: 4, state: "SUCCESS", indices: [] },
      { snapshot: "nightly-slm", start_time_in_millis: 0, state: "SUCCESS", indices: [] },
    ];
    const client = fakeClient((method, path) => (method === "GET" && path === "/_snapshot/composure/_all" ? ok({ snapshots }) : method === "DELETE" ? ok() : undefined));
    assert.deepEqual(await applyRetention(client, "composure", 2), ["composure-20260101t000000z"]);
    const none = fakeClient((method, path) => (method === "GET" && path === "/_snapshot/composure/_all" ? ok({ snapshots }) : method === "DELETE" ? ok() : undefined));
    assert.deepEqual(await applyRetention(none, "composure", 0), ["composure-20260101t000000z", "composure-20260102t000000z", "composure-20260103t000000z-2"]);
  });
});

describe("elasticsearch strategy: restore plans", () => {
  const existing = new Set(["orders", "customers", "restored-logs", ".kibana"]);
  const snapshot = ["customers", "events", "orders", ".kibana"];

  test("each conflict policy touches the indices it says", () => {
    const selected = selectIndices(snapshot, undefined, {});
    assert.deepEqual(selected, ["customers", "events", "orders"], "hidden indices are restored only when named");
    const overwrite = planRestore(selected, existing, "overwrite", "restored-");
    assert.deepEqual(overwrite.entries.map((entry) => `${entry.index}:${entry.action}`), ["customers:overwrite", "events:restore", "orders:overwrite"]);
    assert.equal(summarisePolicy("overwrite", overwrite), "overwrite would replace customers, orders and restore events");
    const skip = planRestore(selected, existing, "skip", "restored-");
    assert.equal(summarisePolicy("skip", skip), "skip would restore events");
    const rename = planRestore(selected, existing, "rename", "restored-");
    assert.deepEqual(rename.entries.map((entry) => entry.target), ["restored-customers", "restored-events", "restored-orders"]);
    assert.equal(summarisePolicy("rename", rename), "rename would create restored-customers, restored-events, restored-orders");
    const error = planRestore(selected, existing, "error", "restored-");
    assert.equal(error.problems.length, 2);
    assert.equal(summarisePolicy("error", error), "error would refuse (customers, orders exist)");
  });

  test("a renamed copy that exists already is refused; VOLUME= and patterns select indices", () => {
    const rename = planRestore(["logs"], existing, "rename", "restored-");
    assert.match(rename.problems[0], /index restored-logs \(the renamed copy of logs\) exists already/);
    assert.deepEqual(selectIndices(snapshot, ".kibana", {}), [".kibana"]);
    assert.deepEqual(selectIndices(["logs-1", "logs-2", "orders"], undefined, { indices: ["logs-*"], exclude_indices: ["logs-2"] }), ["logs-1"]);
    const artifact = { path: "search/repository.tar.zst", bytes: 1, sha256: "0".repeat(64), compression: "zstd" as const, facts: { kind: "snapshot-repository", indices: ["orders"] } };
    assert.ok(matchesVolume(artifact, "orders"), "VOLUME= names an index of the snapshot");
    assert.ok(!matchesVolume(artifact, "events"));
  });
});

test("document counts: exact for an index left alone, within bounds for one written to during the snapshot", () => {
  const facts = { documents: { events: 700, ticks: 113 }, documentBounds: { ticks: [113, 131] as [number, number] } };
  assert.equal(documentDifference(facts, "events", 700), undefined);
  assert.equal(documentDifference(facts, "events", 699), "index events has 699 documents, recorded 700");
  assert.equal(documentDifference(facts, "ticks", 122), undefined);
  assert.equal(documentDifference(facts, "ticks", 140), "index ticks has 140 documents, recorded between 113 and 131 (written to during the snapshot)");
  assert.equal(documentDifference(facts, "ticks", undefined), "index ticks is missing (recorded 113 documents)");
  assert.equal(documentDifference(facts, "other", 5), undefined);
});
