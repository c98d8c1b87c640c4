// export-file.ts: a folder as one self-checking tar file. A round trip gives the same files; a
// flipped byte anywhere (headers, names, data, padding, the checksum list, the end) is refused.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { execFileSync } from "node:child_process";
import { packFolder, unpackFolder } from "../../scripts/lib/archive/export-file.ts";

const base = mkdtempSync(path.join(os.tmpdir(), "composure-export-file-"));
after(() => rmSync(base, { recursive: true, force: true }));

/** A folder `top` with a small file, a file with a name longer than a tar header holds, and the file to go last. */
function folder(name: string): string {
  const parent = path.join(base, name);
  mkdirSync(path.join(parent, "top", "sub"), { recursive: true });
  writeFileSync(path.join(parent, "top", "a.txt"), "hello\n".repeat(100));
  writeFileSync(path.join(parent, "top", "sub", `${"long-name-".repeat(15)}.bin`), Buffer.alloc(700, 7));
  writeFileSync(path.join(parent, "top", "last.json"), "{}\n");
  return parent;
}

async function unpacks(file: string): Promise<Error | undefined> {
  const into = mkdtempSync(path.join(base, "into-"));
  try {
    await unpackFolder(file, into, "top");
    return undefined;
  } catch (error) {
    return error as Error;
  } finally {
    rmSync(into, { recursive: true, force: true });
  }
}

describe("an export file", () => {
  const parent = folder("packed");
  const file = path.join(base, "packed.tar");

  it("holds the folder, the checksum list after the folders, the last file last, and unpacks to the same files", async () => {
    await packFolder(parent, "top", file, { first: ["a.txt"], last: ["last.json"] });
    const names = execFileSync("tar", ["tf", file], { encoding: "utf8" }).trim().split("\n");
    assert.deepEqual(names.slice(0, 4), ["top/", "top/sub/", "top/SHA256SUMS", "top/a.txt"]);
    assert.equal(names.at(-1), "top/last.json");
    const into = mkdtempSync(path.join(base, "into-"));
    const { folder: unpacked, sums } = await unpackFolder(file, into, "top");
    assert.deepEqual([...sums.keys()].sort(), ["a.txt", "last.json", `sub/${"long-name-".repeat(15)}.bin`]);
    assert.deepEqual(readFileSync(path.join(unpacked, "a.txt")), readFileSync(path.join(parent, "top", "a.txt")));
  });

  it("is refused with a flipped byte in any header, name, data, padding, checksum list or end block (every 97th byte tried)", async () => {
    const good = readFileSync(file);
    const accepted: number[] = [];
    for (let at = 0; at < good.length; at += 97) {
      const bad = Buffer.from(good);
      bad[at] ^= 0x01;
      writeFileSync(path.join(base, "bad.tar"), bad);
      if (!(await unpacks(path.join(base, "bad.tar")))) accepted.push(at);
    }
    assert.deepEqual(accepted, []);
  });

  it("names the file that differs from the list, and the one that is not in it", async () => {
    const other = folder("altered");
    const altered = path.join(base, "altered.tar");
    await packFolder(other, "top", altered, { first: [], last: [] });
    // Then written again by hand with one checksum changed and a file added.
    const text = readFileSync(path.join(other, "top", "SHA256SUMS"), "utf8");
    writeFileSync(path.join(other, "top", "SHA256SUMS"), text.replace(/^[0-9a-f]{64}(?=  a\.txt)/m, "0".repeat(64)));
    writeFileSync(path.join(other, "top", "extra"), "x");
    execFileSync("tar", ["cf", altered, "-C", other, "top"]);
    const error = await unpacks(altered);
    assert.match(String(error?.message), /extra is not in SHA256SUMS; a\.txt does not match its sha256/);
  });

  it("refuses a check that throws before anything is written, and a tar of another folder", async () => {
    const target = path.join(base, "refused.tar");
    await assert.rejects(packFolder(folder("refused"), "top", target, { first: [], last: [], check: () => { throw new Error("damaged"); } }), /damaged/);
    assert.ok(!readdirSync(base).some((name) => name.startsWith("refused.tar")));
    const elsewhere = path.join(base, "elsewhere.tar");
    execFileSync("tar", ["cf", elsewhere, "-C", base, "refused/top/a.txt"]);
    assert.match(String((await unpacks(elsewhere))?.message), /outside its top\/ folder/);
  });
});
