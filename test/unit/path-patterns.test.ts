// Path patterns (exclude_paths, secret_paths): what they match, what is refused, and their
// translations for restic and busybox find. The integration suite checks the real programs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { findTest, parsePathPattern, parsePathPatterns, pathMatcher, resticExcludes } from "../../scripts/lib/config/path-patterns.ts";
import { createTarInspector, TarExcludedLinkError } from "../../scripts/lib/archive/tar-inspector.ts";
import { settingsFromLabels } from "../../scripts/lib/config/labels.ts";
import { serviceSettingsSchema } from "../../scripts/lib/config/schema.ts";

const names = ["cache", "cache/f", "cache/sub/g", "a/cache", "a/cache/h", "x.tmp", ".y.tmp", "data/x/z.tmp", "d.tmp/in", "data/a.log", "data/x/b.log", "lost+found", "lost+found/q", "keep.txt", "cachefoo"];
const matched = (...patterns: string[]) => names.filter(pathMatcher(parsePathPatterns(patterns)));

test("a name matches at any depth, a path from the volume's root, each with what lies under it", () => {
  assert.deepEqual(matched("cache/**"), ["cache", "cache/f", "cache/sub/g"]);
  assert.deepEqual(matched("/cache"), ["cache", "cache/f", "cache/sub/g"]);
  assert.deepEqual(matched("cache"), ["cache", "cache/f", "cache/sub/g", "a/cache", "a/cache/h"]);
  assert.deepEqual(matched("cache/"), matched("cache"));
  assert.deepEqual(matched("**/cache"), matched("cache"));
  assert.deepEqual(matched("*.tmp"), ["x.tmp", ".y.tmp", "data/x/z.tmp", "d.tmp/in"]);
  assert.deepEqual(matched("data/*.log"), ["data/a.log"]);
  assert.deepEqual(matched("lost+found"), ["lost+found", "lost+found/q"]);
  assert.deepEqual(matched("data/?/*.tmp"), ["data/x/z.tmp"]);
  assert.ok(!pathMatcher(parsePathPatterns(["*.tmp"]))("."), "never the volume's root");
  assert.ok(pathMatcher(parsePathPatterns(["cache/**"]))("./cache/"), "tar's ./ and trailing / are ignored");
});

test("non-ASCII patterns match the names' bytes as tar streams carry them", () => {
  const name = Buffer.from("ünï/cödé", "utf8").toString("latin1");
  assert.ok(pathMatcher(parsePathPatterns(["ünï"]))(name));
});

test("patterns that cannot mean the same in every program are refused, saying why", () => {
  for (const [text, why] of [
    ["", /empty/],
    ["*", /every name/],
    [".*", /every name/],
    ["a/../b", /'\.\.'/],
    ["a//b", /single '\/'/],
    ["a/**/b", /\*\* is supported only/],
    ["**/a/b", /\*\*\/ works only/],
    ["[ab]", /only \* and \?/],
    ["a\\b", /only \* and \?/],
    ["a\nb", /control character/],
  ] as const) {
    assert.match(parsePathPattern(text).problem ?? "", why, text);
  }
});

test("restic gets absolute patterns under the source, find a prune test from the volume's root", () => {
  const patterns = parsePathPatterns(["cache/**", "*.tmp", "data/x?.log"]);
  assert.deepEqual(resticExcludes(patterns, "/v/0"), ["--exclude", "/v/0/cache", "--exclude", "/v/0/**/*.tmp", "--exclude", "/v/0/data/x?.log"]);
  assert.deepEqual(findTest(patterns), ["(", "-regex", "\\./cache", "-o", "-regex", ".*/[^/]*\\.tmp", "-o", "-regex", "\\./data/x[^/]\\.log", ")"]);
});

test("labels give comma-separated lists, checked by the same schema as composure.yml", () => {
  const { settings } = settingsFromLabels({ "composure.exclude_paths": "cache/**, *.tmp", "composure.secret_paths": ".secret.key" }, ["volume"]);
  assert.deepEqual(serviceSettingsSchema.parse(settings), { exclude_paths: ["cache/**", "*.tmp"], secret_paths: [".secret.key"] });
  const bad = serviceSettingsSchema.safeParse({ exclude_paths: ["a/../b"] });
  assert.ok(!bad.success && /'\.\.'/.test(bad.error.issues[0].message));
});

/** A ustar archive of `entries` (name, type, content), written by hand. */
function tarOf(entries: { name: string; type?: "0" | "1" | "5"; content?: string; link?: string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const header = Buffer.alloc(512);
    const body = Buffer.from(entry.content ?? "");
    header.write(entry.name, 0, "latin1");
    header.write("0000644\0", 100);
    header.write("0000000\0", 108);
    header.write("0000000\0", 116);
    header.write(`${body.length.toString(8).padStart(11, "0")}\0`, 124);
    header.write("00000000000\0", 136);
    header.write(entry.type ?? "0", 156);
    if (entry.link) header.write(entry.link, 157, "latin1");
    header.write("ustar\u000000", 257, "latin1");
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return Buffer.concat([...blocks, Buffer.alloc(1024)]);
}

async function namesAfterFilter(archive: Buffer, patterns: string[]): Promise<string[]> {
  const filter = createTarInspector({ validate: false, exclude: pathMatcher(parsePathPatterns(patterns)) });
  const out: Buffer[] = [];
  const feed = async function* () {
    for (let at = 0; at < archive.length; at += 300) yield archive.subarray(at, at + 300); // headers split across chunks
  };
  await pipeline(feed, filter, new Writable({ write: (chunk, _encoding, done) => void (out.push(chunk), done()) }));
  const seen: string[] = [];
  await pipeline(async function* () { yield Buffer.concat(out); }, createTarInspector({ onEntry: (entry) => seen.push(entry.name) }), new Writable({ write: (_c, _e, done) => done() }));
  return seen;
}

test("the archive engine's filter drops excluded entries with their data, and the result is a valid archive", async () => {
  const archive = tarOf([
    { name: "./", type: "5" },
    { name: "./cache/", type: "5" },
    { name: "./cache/big", content: "x".repeat(5000) },
    { name: "./keep.txt", content: "keep" },
    { name: "./a.tmp", content: "tmp" },
    { name: "./data/", type: "5" },
    { name: "./data/b.tmp", content: "tmp" },
  ]);
  assert.deepEqual(await namesAfterFilter(archive, ["cache/**", "*.tmp"]), [".", "keep.txt", "data/"]);
});

test("a hard link to an excluded file is refused with what to do", async () => {
  const archive = tarOf([{ name: "./cache/f", content: "f" }, { name: "./data", type: "1", link: "./cache/f" }]);
  await assert.rejects(namesAfterFilter(archive, ["cache/**"]), (error: Error) => error instanceof TarExcludedLinkError && /exclude both, or neither/.test(error.message));
});
