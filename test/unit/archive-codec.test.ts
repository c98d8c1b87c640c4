import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { after, describe, test } from "node:test";
import { configureArchives, readDecompressed, writeCompressed } from "../../scripts/lib/archive/files.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "composure-codec-"));
const payload = Buffer.from("composure codec payload\n".repeat(50_000));

async function readAll(file: string, written: Awaited<ReturnType<typeof writeCompressed>>): Promise<Buffer> {
  const source = readDecompressed(file, written, written);
  const chunks: Buffer[] = [];
  source.stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  await source.done;
  return Buffer.concat(chunks);
}

describe("archive encoding", () => {
  after(() => configureArchives({ compression: "zstd", recipients: [] }));

  test("gzip archives are named .gz, recorded as gzip and read back", async () => {
    configureArchives({ compression: "gzip", recipients: [] });
    const written = await writeCompressed(Readable.from([payload]), path.join(dir, "a.tar.zst"), { level: 3 });
    assert.equal(written.file, path.join(dir, "a.tar.gz"));
    assert.equal(written.compression, "gzip");
    assert.deepEqual(execFileSync("gzip", ["-dc", written.file], { maxBuffer: 1 << 26 }), payload, "stock gzip reads it");
    assert.deepEqual(await readAll(written.file, written), payload);
  });

  test("age archives decrypt with the stock age tool and fail clearly with a wrong identity", async () => {
    const identity = path.join(dir, "id.txt");
    const wrong = path.join(dir, "wrong.txt");
    execFileSync("age-keygen", ["-o", identity], { stdio: "ignore" });
    execFileSync("age-keygen", ["-o", wrong], { stdio: "ignore" });
    const recipient = execFileSync("age-keygen", ["-y", identity], { encoding: "utf8" }).trim();
    configureArchives({ compression: "zstd", recipients: [recipient], identityFile: identity });
    const written = await writeCompressed(Readable.from([payload]), path.join(dir, "b.tar.zst"), { level: 3 });
    assert.equal(written.file, path.join(dir, "b.tar.zst.age"));
    assert.equal(written.encryption, "age");
    assert.ok(!readFileSync(written.file).includes("composure codec payload"));
    const plain = execFileSync("sh", ["-c", `age -d -i ${identity} ${written.file} | zstd -dc`], { maxBuffer: 1 << 26 });
    assert.deepEqual(plain, payload, "stock age + zstd read it");
    assert.deepEqual(await readAll(written.file, written), payload);
    configureArchives({ compression: "zstd", recipients: [recipient], identityFile: wrong });
    await assert.rejects(readAll(written.file, written), /age exited with 1: .*no identity matched/);
  });

  test("a stored file that differs from the manifest is reported as corrupt", async () => {
    configureArchives({ compression: "zstd", recipients: [] });
    const written = await writeCompressed(Readable.from([payload]), path.join(dir, "c.tar.zst"), { level: 3 });
    await assert.rejects(readAll(written.file, { ...written, sha256: "0".repeat(64) }), /does not match its sha256/);
  });
});
