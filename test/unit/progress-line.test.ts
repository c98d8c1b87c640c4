// The progress line of one transfer: bytes of the source read, against its size when known (the
// share done), the rate, and the time left at that rate.
import assert from "node:assert/strict";
import { test } from "node:test";
import { progressLine } from "../../scripts/lib/log.ts";

const MiB = 1024 ** 2;

test("with the size known: bytes of it, the share done, the rate and the time left", () => {
  assert.equal(progressLine({ label: "data", bytes: 412 * MiB, total: 1024 * MiB, seconds: 0.5 }), "data: 412.0 MiB of 1.0 GiB (40%) 824.0 MiB/s, 0.7 s left");
  assert.equal(progressLine({ label: "data", bytes: 100 * MiB, total: 10_000 * MiB, seconds: 10 }), "data: 100.0 MiB of 9.8 GiB (1%) 10.0 MiB/s, 16 min 30 s left");
});

test("the share is rounded down: 100% only once the whole size is read", () => {
  assert.match(progressLine({ label: "data", bytes: 1023.9 * MiB, total: 1024 * MiB, seconds: 1 }), /\(99%\)/);
  assert.equal(progressLine({ label: "data", bytes: 1024 * MiB, total: 1024 * MiB, seconds: 2 }), "data: 1.0 GiB of 1.0 GiB (100%) 512.0 MiB/s");
});

test("past a size measured a little short: 100% and no time left, never more", () => {
  assert.equal(progressLine({ label: "data", bytes: 1100 * MiB, total: 1024 * MiB, seconds: 1 }), "data: 1.1 GiB of 1.0 GiB (100%) 1.1 GiB/s");
});

test("without a size: bytes and rate only", () => {
  assert.equal(progressLine({ label: "db: pg_dump shop", bytes: 3 * MiB, seconds: 2 }), "db: pg_dump shop: 3.0 MiB 1.5 MiB/s");
});

test("nothing read yet: no rate, so no time left", () => {
  assert.equal(progressLine({ label: "data", bytes: 0, total: 1024 * MiB, seconds: 0.1 }), "data: 0 B of 1.0 GiB (0%) 0 B/s");
});

test("bytes that cannot be counted (no /proc): the elapsed time", () => {
  assert.equal(progressLine({ label: "data", bytes: undefined, total: 1024 * MiB, seconds: 3.2 }), "data: 3.2 s");
});
