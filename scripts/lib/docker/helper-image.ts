// Makes sure the helper image exists. Default: the official busybox image. When it is absent and
// cannot be pulled (no registry), composure builds an equivalent from the host's static busybox
// (Debian: busybox-static) and says so; it never stops at a bare pull error.
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, openSync, readSync, closeSync, readFileSync, rmSync, mkdirSync, copyFileSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { $ } from "zx";
import { getEngine } from "./engine.ts";
import { log } from "../log.ts";

export const defaultHelperImage = "busybox:latest";

/** False when the engine answers that the image is not there (or not usable); an engine that does not answer is an error, not "absent". */
export async function imageExists(name: string): Promise<boolean> {
  try {
    await getEngine().getImage(name).inspect();
    return true;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== undefined) return false;
    throw error;
  }
}

export async function ensureHelperImage(name: string): Promise<string> {
  if (await imageExists(name)) return name;
  const busybox = findStaticBusybox();
  const localTag = busybox ? `composure/helper-busybox:${fileHash(busybox)}` : undefined;
  if (localTag && (await imageExists(localTag))) return localTag;
  if (await tryPull(name)) return name;
  if (!busybox || !localTag) {
    throw new Error(
      `helper image ${name} is not present and could not be pulled, and no static busybox was found on this host to build one: ` +
        `install busybox-static (apt-get install busybox-static), or load an image with 'docker load', or set helper_image in composure.yml / COMPOSURE_HELPER_IMAGE`,
    );
  }
  log.warn(`helper image ${name} is not available (no registry?): building ${localTag} from ${busybox}`);
  await buildBusyboxImage(busybox, localTag);
  return localTag;
}

async function tryPull(name: string): Promise<boolean> {
  const engine = getEngine();
  try {
    const stream = await Promise.race([
      engine.pull(name),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("pull timed out")), 20_000)),
    ]);
    await new Promise<void>((resolve, reject) =>
      engine.modem.followProgress(stream, (error: Error | null) => (error ? reject(error) : resolve())),
    );
    return imageExists(name);
  } catch {
    return false;
  }
}

/** A statically linked busybox on PATH (an ELF file without an interpreter), or undefined. */
export function findStaticBusybox(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/bin", "/usr/bin"])) {
    const candidate = path.join(dir, "busybox");
    if (existsSync(candidate) && isStaticElf(candidate)) return candidate;
  }
  return undefined;
}

function isStaticElf(file: string): boolean {
  const fd = openSync(file, "r");
  try {
    const header = Buffer.alloc(64);
    readSync(fd, header, 0, 64, 0);
    if (header.toString("latin1", 0, 4) !== "\x7fELF" || header[4] !== 2) return false; // 64-bit ELF only
    const tableOffset = Number(header.readBigUInt64LE(0x20));
    const entrySize = header.readUInt16LE(0x36);
    const entries = header.readUInt16LE(0x38);
    const table = Buffer.alloc(entrySize * entries);
    readSync(fd, table, 0, table.length, tableOffset);
    for (let index = 0; index < entries; index++) {
      if (table.readUInt32LE(index * entrySize) === 3) return false; // PT_INTERP: dynamically linked
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

function fileHash(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 12);
}

/** Imports a rootfs holding busybox, its applet links, /etc/passwd and /tmp as `tag`. */
export async function buildBusyboxImage(busybox: string, tag: string): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), "composure-busybox-"));
  const rootfsTar = `${root}.tar`;
  try {
    for (const dir of ["bin", "etc", "tmp"]) mkdirSync(path.join(root, dir));
    chmodSync(path.join(root, "tmp"), 0o1777);
    copyFileSync(busybox, path.join(root, "bin", "busybox"));
    chmodSync(path.join(root, "bin", "busybox"), 0o755);
    const applets = (await $({ quiet: true })`${busybox} --list`).stdout.split("\n").filter((name) => name && name !== "busybox");
    for (const applet of applets) symlinkSync("busybox", path.join(root, "bin", applet));
    writeFileSync(path.join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
    writeFileSync(path.join(root, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
    // A file, not a pipe: the engine reads it at its own pace (a refused import leaves no tar blocked on a pipe).
    const tarred = await $({ quiet: true, nothrow: true })`tar -C ${root} -cf ${rootfsTar} .`;
    if (tarred.exitCode !== 0) throw new Error(`tar of the busybox rootfs exited with code ${tarred.exitCode}: ${tarred.stderr.trim()}`);
    const [repo, version] = splitTag(tag);
    const output = await getEngine().importImage(rootfsTar, { repo, tag: version, changes: ['ENV PATH=/bin', 'CMD ["sh"]'] } as object);
    await new Promise<void>((resolve, reject) =>
      getEngine().modem.followProgress(output, (error: Error | null) => (error ? reject(error) : resolve())),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(rootfsTar, { force: true });
  }
}

function splitTag(tag: string): [string, string] {
  const colon = tag.lastIndexOf(":");
  return colon > tag.lastIndexOf("/") ? [tag.slice(0, colon), tag.slice(colon + 1)] : [tag, "latest"];
}
