// The Remote interface behaves the same on every backend: rclone's local backend, and real
// WebDAV, SFTP and S3 servers (rclone serve) on 127.0.0.1 with authentication. S3 also carries a
// 600 MB file up in many parts and back, checked by sha256 end to end.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { createReadStream, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { RcloneRemote } from "../../scripts/lib/remote/rclone.ts";
import type { Remote } from "../../scripts/lib/remote/types.ts";
import { tempDir } from "../support/composure.ts";
import { RcloneServer, S3Server } from "../support/remotes.ts";

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");
const sha256File = async (file: string) => {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
};

const webdav = new RcloneServer("webdav", "conformweb");
const sftp = new RcloneServer("sftp", "conformsftp");
const s3 = new S3Server("conforms3");

const backends: [string, () => Remote][] = [
  ["rclone local", () => new RcloneRemote({ target: tempDir("remote-local") })],
  ["rclone WebDAV", () => new RcloneRemote({ target: "conformweb:base", backoffSeconds: 0.1 })],
  ["rclone SFTP", () => new RcloneRemote({ target: "conformsftp:base", backoffSeconds: 0.1 })],
  ["rclone S3", () => new RcloneRemote({ target: `conforms3:${s3.bucket}/base`, backoffSeconds: 0.1 })],
];

before(async () => {
  await Promise.all([webdav.start(), sftp.start(), s3.start()]);
  Object.assign(process.env, webdav.clientEnv(), sftp.clientEnv(), s3.clientEnv());
});
after(async () => {
  await Promise.all([webdav.stop(), sftp.stop(), s3.stop()]);
  rmSync(s3.dir, { recursive: true, force: true });
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

describe("a large file on S3", { timeout: 900_000 }, () => {
  test("600 MB of random bytes go up in many parts and come back with the same sha256", async () => {
    const dir = tempDir("s3-large");
    try {
      const file = path.join(dir, "large.bin");
      execFileSync("dd", ["if=/dev/urandom", `of=${file}`, "bs=1M", "count=600", "status=none"]);
      const expected = await sha256File(file);
      // 16 MiB parts: 600 MiB must go up as 38 of them (above rclone's 200 MiB upload cutoff; the
      // default 5 MiB parts would make 120, so the count also shows chunkSize reached rclone).
      const remote = new RcloneRemote({ target: `conforms3:${s3.bucket}/large`, chunkSize: "16M", backoffSeconds: 0.1 });
      await remote.upload(file, "p/large.bin");
      assert.equal(s3.multipartParts("large/p/large.bin"), 38, "parts of the multipart upload the server received");
      assert.deepEqual((await remote.list("p")).map((entry) => [entry.path, entry.bytes]), [["large.bin", 600 * 1024 * 1024]]);
      await remote.downloadFile("p/large.bin", path.join(dir, "back.bin"));
      assert.equal(await sha256File(path.join(dir, "back.bin")), expected);
      await remote.removeDir("p");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

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
