// The Remote interface behaves the same on every backend: rclone's local backend, and real
// WebDAV and SFTP servers (rclone serve) on 127.0.0.1 with authentication.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { RcloneRemote } from "../../scripts/lib/remote/rclone.ts";
import type { Remote } from "../../scripts/lib/remote/types.ts";
import { tempDir } from "../support/composure.ts";
import { RcloneServer } from "../support/remotes.ts";

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

const webdav = new RcloneServer("webdav", "conformweb");
const sftp = new RcloneServer("sftp", "conformsftp");

const backends: [string, () => Remote][] = [
  ["rclone local", () => new RcloneRemote({ target: tempDir("remote-local") })],
  ["rclone WebDAV", () => new RcloneRemote({ target: "conformweb:base", backoffSeconds: 0.1 })],
  ["rclone SFTP", () => new RcloneRemote({ target: "conformsftp:base", backoffSeconds: 0.1 })],
];

before(async () => {
  await Promise.all([webdav.start(), sftp.start()]);
  Object.assign(process.env, webdav.clientEnv(), sftp.clientEnv());
});
after(async () => {
  await Promise.all([webdav.stop(), sftp.stop()]);
});

for (const [name, createRemote] of backends) {
  describe(`the Remote interface on ${name}`, { timeout: 120_000 }, () => {
    let remote: Remote | undefined;
    const makeRemote = () => (remote ??= createRemote());
    const local = tempDir("remote-src");
    const content = Buffer.from(Array.from({ length: 300_000 }, (_, index) => index % 251));
    mkdirSync(path.join(local, "run", "db"), { recursive: true });
    writeFileSync(path.join(local, "run", "db", "data.tar.zst"), content);
    writeFileSync(path.join(local, "run", "manifest.json"), "{}");
    writeFileSync(path.join(local, "single.txt"), "one file\n");

    test("lists nothing for a folder that does not exist", async () => {
      assert.deepEqual(await makeRemote().list("nowhere/at/all"), []);
    });

    test("uploads a folder (with exclusions) and a single file, and lists them with sizes", async () => {
      const remote = makeRemote();
      await remote.upload(path.join(local, "run"), "p/r1", { exclude: ["manifest.json"] });
      await remote.upload(path.join(local, "single.txt"), "p/r1/extra/single.txt");
      const entries = (await remote.list("p/r1")).sort((a, b) => a.path.localeCompare(b.path));
      assert.deepEqual(entries.map((entry) => [entry.path, entry.bytes]), [["db/data.tar.zst", content.length], ["extra/single.txt", 9]]);
      for (const entry of entries) if (entry.sha256) assert.match(entry.sha256, /^[0-9a-f]{64}$/);
    });

    test("hashes a remote file with sha256", async () => {
      assert.equal(await makeRemote().hash("p/r1/db/data.tar.zst"), sha256(content));
    });

    test("downloads a file and a folder byte for byte", async () => {
      const remote = makeRemote();
      const target = tempDir("remote-dl");
      await remote.downloadFile("p/r1/db/data.tar.zst", path.join(target, "one.bin"));
      assert.equal(sha256(readFileSync(path.join(target, "one.bin"))), sha256(content));
      await remote.downloadDir("p/r1", path.join(target, "all"), { exclude: ["single.txt"] });
      assert.equal(sha256(readFileSync(path.join(target, "all", "db", "data.tar.zst"))), sha256(content));
      assert.ok(!existsSync(path.join(target, "all", "extra", "single.txt")));
    });

    test("removes a folder with everything in it, and removing it again is harmless", async () => {
      const remote = makeRemote();
      await remote.removeDir("p/r1");
      assert.deepEqual(await remote.list("p/r1"), []);
      await remote.removeDir("p/r1");
    });
  });
}

describe("rclone failures", { timeout: 120_000 }, () => {
  test("wrong credentials fail with a clear, permanent error", async () => {
    const wrong = new RcloneServer("webdav", "wrongweb");
    await wrong.start();
    try {
      Object.assign(process.env, wrong.clientEnv("not-the-password"));
      const remote = new RcloneRemote({ target: "wrongweb:x", backoffSeconds: 0.1 });
      await assert.rejects(remote.upload(path.join(tempDir("wrong"), "."), "p"), /upload of p on rclone wrongweb:x failed/);
    } finally {
      await wrong.stop();
    }
  });

  test("a server that is down is retried, then reported as a temporary failure", async () => {
    const down = new RcloneServer("webdav", "downweb");
    await down.start();
    await down.stop();
    Object.assign(process.env, down.clientEnv());
    const remote = new RcloneRemote({ target: "downweb:x", attempts: 2, backoffSeconds: 0.1 });
    await assert.rejects(remote.list("p"), /temporary error/);
  });
});
