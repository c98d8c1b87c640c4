// One folder as one self-checking tar file (make export / make import). The folder gets a
// SHA256SUMS list of every other file in it (sha256sum's format: `sha256sum -c SHA256SUMS` checks
// an extracted copy by hand), then GNU tar writes it in the order asked for. Reading it back, the
// tar inspector sees every byte before tar does: a header whose checksum fails or is written otherwise than GNU tar does, non-zero padding,
// anything but plain files and folders of the one top folder is refused; then every file is
// checked against the list (none missing, none added). A flipped byte fails one of the two.
import { createReadStream } from "node:fs";
import { readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { $ } from "zx";
import { ChecksumError, hashFile, type StoredFile } from "./files.ts";
import { createTarInspector, displayName, TarFormatError, type TarEntry } from "./tar-inspector.ts";

export const checksumListFile = "SHA256SUMS";

/** Each file's size and sha256, by its path inside the folder. */
export type Checksums = Map<string, StoredFile>;

/** Folders and files under `dir` (links count as files: tar and the hash read through them), relative and sorted. */
async function treeOf(dir: string): Promise<{ folders: string[]; files: string[] }> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const relative = (entry: (typeof entries)[number]) => path.relative(dir, path.join(entry.parentPath, entry.name));
  return {
    folders: entries.filter((entry) => entry.isDirectory()).map(relative).sort(),
    files: entries.filter((entry) => !entry.isDirectory()).map(relative).sort(),
  };
}

async function hashAll(dir: string, files: string[]): Promise<Checksums> {
  const sums: Checksums = new Map();
  for (const file of files) sums.set(file, await hashFile(path.join(dir, file)));
  return sums;
}

export interface PackOrder {
  /** Files (inside the folder) written right after the checksum list. */
  first: string[];
  /** Files written at the very end, in this order (a run's manifest). */
  last: string[];
  /** Called with every file's checksum before anything is written: throw to refuse. */
  check?: (sums: Checksums) => void;
}

/** Writes `parent/top` into `target` (through target.partial: an interrupted pack leaves no target); returns the checksums. */
export async function packFolder(parent: string, top: string, target: string, order: PackOrder): Promise<Checksums> {
  const folder = path.join(parent, top);
  const { folders, files } = await treeOf(folder);
  const sums = await hashAll(folder, files);
  order.check?.(sums);
  await writeFile(path.join(folder, checksumListFile), [...sums].map(([file, stored]) => `${stored.sha256}  ${file}\n`).join(""), { mode: 0o600 });
  const edges = new Set([...order.first, ...order.last]);
  const names = [...folders, checksumListFile, ...order.first, ...files.filter((file) => !edges.has(file)), ...order.last];
  const partial = `${target}.partial`;
  try {
    await writeTar(parent, [top, ...names.map((name) => path.join(top, name))], partial);
    await rename(partial, target);
  } finally {
    await rm(partial, { force: true });
  }
  return sums;
}

async function writeTar(dir: string, names: string[], target: string): Promise<void> {
  // GNU format: no PAX records (text no checksum covers), sizes past 8 GiB in base-256. The list
  // is NUL-separated and taken verbatim; --dereference reads through the links a folder may hold.
  const list = names.map((name) => `${name}\0`).join("");
  const result = await $({ cwd: dir, quiet: true, nothrow: true, input: list })`tar --create --file=${target} --format=gnu --numeric-owner --dereference --no-recursion --null --verbatim-files-from --files-from=-`;
  if (result.exitCode !== 0) throw new Error(`tar could not write ${target}: ${result.stderr.trim() || `exit ${result.exitCode}`}`);
}

/**
 * Extracts the tar file `file` into the empty folder `into`, where it must hold one folder, `top`,
 * then checks every file of it against its checksum list. Throws TarFormatError or ChecksumError
 * naming what failed; returns the folder and the checksums.
 */
export async function unpackFolder(file: string, into: string, top: string): Promise<{ folder: string; sums: Checksums }> {
  const inspector = createTarInspector({ strict: true, onEntry: (entry) => refuseOutside(entry, top) });
  // --ignore-zeros: tar reads to the end instead of closing the pipe at the end-of-archive marker
  // (what follows it is the inspector's to check: zeros only).
  const tar = $({ cwd: into, quiet: true, nothrow: true })`tar --extract --file=- --ignore-zeros --no-same-owner --no-same-permissions`;
  const [fed, extracted] = await Promise.allSettled([pipeline(createReadStream(file), inspector, tar.stdin), tar]);
  if (fed.status === "rejected") throw fed.reason; // the inspector's finding explains tar's failure best
  if (extracted.status === "rejected" || extracted.value.exitCode !== 0) {
    throw new Error(`tar could not extract ${file}: ${extracted.status === "rejected" ? String(extracted.reason) : extracted.value.stderr.trim()}`);
  }
  const folder = path.join(into, top);
  return { folder, sums: await checkAgainstList(folder) };
}

function refuseOutside(entry: TarEntry, top: string): void {
  const name = entry.name.replace(/^\.\//, "").replace(/\/+$/, "");
  if (entry.type !== "file" && entry.type !== "directory") throw new TarFormatError(`it holds a ${entry.type} entry, "${displayName(name)}" (an export holds only files and folders)`);
  if (name !== top && !name.startsWith(`${top}/`)) throw new TarFormatError(`it holds "${displayName(name)}", outside its ${top}/ folder`);
}

/** Every file of `folder` against its checksum list: one error naming each file missing, added or different. */
async function checkAgainstList(folder: string): Promise<Checksums> {
  const listed = await readChecksumList(folder);
  const files = (await treeOf(folder)).files.filter((file) => file !== checksumListFile);
  const sums = await hashAll(folder, files.filter((file) => listed.has(file)));
  const problems = [
    ...files.filter((file) => !listed.has(file)).map((file) => `${file} is not in ${checksumListFile}`),
    ...[...listed.keys()].filter((file) => !sums.has(file)).map((file) => `${file} is missing`),
    ...[...sums].filter(([file, stored]) => stored.sha256 !== listed.get(file)).map(([file]) => `${file} does not match its sha256`),
  ];
  if (problems.length) throw new ChecksumError(`${problems.slice(0, 5).join("; ")}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ""}`);
  return sums;
}

async function readChecksumList(folder: string): Promise<Map<string, string>> {
  const text = await readFile(path.join(folder, checksumListFile), "utf8").catch(() => {
    throw new ChecksumError(`it has no ${checksumListFile}`);
  });
  const lines = text.split("\n").filter(Boolean);
  const parsed = lines.map((line) => /^([0-9a-f]{64}) {2}(.+)$/.exec(line));
  const bad = parsed.findIndex((match) => !match);
  if (bad !== -1) throw new ChecksumError(`line ${bad + 1} of ${checksumListFile} is not "<sha256>  <file>"`);
  return new Map(parsed.map((match) => [match![2], match![1]]));
}
