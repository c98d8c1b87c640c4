// Deterministic data for the volume datasets: the same BENCH_SIZE gives the same bytes on every
// machine (fixed seeds, no clock, no Math.random), so runs compare.
import { createCipheriv } from "node:crypto";
import { createWriteStream, mkdirSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import path from "node:path";

/** Incompressible, reproducible bytes: AES-256-CTR over zeros with a key made from the seed. */
export function pseudoRandom(bytes: number, seed: number): Buffer {
  const key = Buffer.alloc(32);
  key.writeUInt32BE(seed >>> 0, 0);
  key.writeUInt32BE(0x9e3779b9, 4);
  return createCipheriv("aes-256-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(bytes));
}

const words = ["alpha", "beta", "gamma", "delta", "order", "customer", "status", "shipped", "pending", "total", "amount", "EUR", "note"];

/** One JSON line of an order-like record, varying with the counter. */
function jsonLine(counter: number): string {
  const word = words[(counter * 7919) % words.length];
  return `{"id":${counter},"customer":"${word}-${counter % 9973}","status":"${words[counter % words.length]}","amount":${((counter * 31) % 100000) / 100},"tags":["${word}","${words[(counter * 13) % words.length]}"]}`;
}

/** A JSON-lines file of about `bytes` bytes, starting at record `first`. */
async function writeText(file: string, bytes: number, first: number): Promise<void> {
  const out = createWriteStream(file);
  let written = 0;
  let counter = first;
  while (written < bytes) {
    const lines: string[] = [];
    for (let index = 0; index < 2000; index++) lines.push(jsonLine(++counter));
    const chunk = `${lines.join("\n")}\n`;
    written += chunk.length;
    if (!out.write(chunk)) await once(out, "drain");
  }
  out.end();
  await once(out, "close");
}

/**
 * The mixed volume: ~60% JSON-like text in one large file, ~30% random bytes in 12 blobs, the rest
 * in small files (20,000 per GB, at most 20,000). `part` makes a second slice (for the scaling
 * series) different from the first while keeping the same mix.
 */
export async function generateMixed(dir: string, bytes: number, part = 0): Promise<void> {
  const gb = bytes / 1024 ** 3;
  mkdirSync(dir, { recursive: true });
  await writeText(path.join(dir, "orders.jsonl"), bytes * 0.6, part * 1e9);
  const blobs = path.join(dir, "blobs");
  mkdirSync(blobs, { recursive: true });
  for (let index = 0; index < 12; index++) writeFileSync(path.join(blobs, `blob-${index}.bin`), pseudoRandom(Math.floor((bytes * 0.3) / 12), part * 100 + index + 1));
  const small = Math.round(20000 * Math.min(gb, 1));
  for (let index = 0; index < small; index++) {
    const sub = path.join(dir, "small", String(index % 100));
    if (index < 100) mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, `f${index}.json`), `{"file":${index},"part":${part},"payload":"${"x".repeat(index % 4000)}"}\n`);
  }
}

/**
 * The small-file volume: `count` files of 64 B to 4 KB (about 2 KB on average) in folders of
 * 1,000, like a mail spool, an upload store or a node_modules tree: three in four are text, one in
 * four random bytes.
 */
export async function generateSmallFiles(dir: string, count: number): Promise<void> {
  const random = pseudoRandom(1 << 20, 4242);
  for (let index = 0; index < count; index++) {
    const folder = path.join(dir, `d${String(Math.floor(index / 1000)).padStart(3, "0")}`);
    if (index % 1000 === 0) mkdirSync(folder, { recursive: true });
    const size = 64 + ((index * 2654435761) % 4032);
    let content: Buffer;
    if (index % 4 === 3) {
      const offset = (index * 40503) % (random.length - size);
      content = random.subarray(offset, offset + size);
    } else {
      let text = "";
      for (let line = index * 50; text.length < size; line++) text += `${jsonLine(line)}\n`;
      content = Buffer.from(text.slice(0, size));
    }
    writeFileSync(path.join(folder, `item-${index}.${index % 4 === 3 ? "bin" : "json"}`), content);
    if (index % 5000 === 4999) await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * An OpenSearch _bulk body (NDJSON) for documents `first` to `first + count - 1` of index `index`:
 * a few indexed fields, ~400 B of text and a 3 KB `payload` (base64 of random bytes, mapped as
 * binary: stored, not indexed, like an attachment). The payload's seed is the batch's first document.
 */
export function searchDocuments(index: string, first: number, count: number): string {
  const payloadBytes = 2304;
  const random = pseudoRandom(payloadBytes * count, 7_000_000 + first);
  const lines: string[] = [];
  for (let offset = 0; offset < count; offset++) {
    const id = first + offset;
    const text = Array.from({ length: 60 }, (_, k) => words[(id * k + k * k) % words.length]).join(" ");
    const payload = random.subarray(offset * payloadBytes, (offset + 1) * payloadBytes).toString("base64");
    lines.push(JSON.stringify({ index: { _index: index, _id: String(id) } }));
    lines.push(JSON.stringify({ id, at: new Date(1_700_000_000_000 + id * 1000).toISOString(), kind: words[id % words.length], customer: `${words[(id * 7) % words.length]}-${id % 9973}`, amount: ((id * 7919) % 100000) / 100, text, payload }));
  }
  return `${lines.join("\n")}\n`;
}
