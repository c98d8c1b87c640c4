import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import {
  decideRetention,
  retentionPolicySchema,
  type RetentionDecision,
  type RetentionPolicy,
  type RunFacts,
} from "../../scripts/lib/catalog/retention.ts";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function run(id: string, iso: string, extra: Partial<Omit<RunFacts, "id">> = {}): RunFacts {
  return { id, startedAt: new Date(iso), complete: true, services: ["db"], ...extra };
}

function keptIds(decisions: RetentionDecision[]): string[] {
  return decisions.filter((d) => d.keep).map((d) => d.id).sort();
}

function reasonsOf(decisions: RetentionDecision[], id: string): string[] {
  const decision = decisions.find((d) => d.id === id);
  assert.ok(decision, `no decision for ${id}`);
  return decision.reasons;
}

/** Compare two id sets and report only the difference, so failures stay readable. */
function assertSameIds(actual: Iterable<string>, expected: Iterable<string>, label = "") {
  const a = new Set(actual);
  const e = new Set(expected);
  const missing = [...e].filter((id) => !a.has(id)).sort();
  const extra = [...a].filter((id) => !e.has(id)).sort();
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] }, label);
}

/** Deterministic PRNG (mulberry32), so the simulated history is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function withTimeZone<T>(tz: string, fn: () => T): T {
  const saved = process.env.TZ;
  process.env.TZ = tz;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
}

// ---------------------------------------------------------------------------
// Independent reference model, used for the two-year simulations.
//
// It is written differently from the implementation on purpose: buckets come
// from ISO strings and from "week 1 starts on the Monday on or before 4 January",
// and each rule groups the whole history into a map and then sorts the buckets,
// instead of walking the runs once.
// ---------------------------------------------------------------------------

function week1Monday(year: number): number {
  const jan4 = new Date(Date.UTC(year, 0, 4));
  const daysSinceMonday = (jan4.getUTCDay() + 6) % 7;
  return jan4.getTime() - daysSinceMonday * DAY;
}

function referenceIsoWeek(ms: number): string {
  const year = new Date(ms).getUTCFullYear();
  for (const y of [year + 1, year, year - 1]) {
    const start = week1Monday(y);
    if (ms >= start) return `${y}-W${String(Math.floor((ms - start) / (7 * DAY)) + 1).padStart(2, "0")}`;
  }
  throw new Error("unreachable");
}

const referenceRules: Array<{ key: keyof RetentionPolicy; name: string; label: (d: Date) => string }> = [
  { key: "keep_hourly", name: "hourly", label: (d) => `${d.toISOString().slice(0, 13)}:00Z` },
  { key: "keep_daily", name: "daily", label: (d) => d.toISOString().slice(0, 10) },
  { key: "keep_weekly", name: "weekly", label: (d) => referenceIsoWeek(d.getTime()) },
  { key: "keep_monthly", name: "monthly", label: (d) => d.toISOString().slice(0, 7) },
  { key: "keep_yearly", name: "yearly", label: (d) => d.toISOString().slice(0, 4) },
];

function newer(a: RunFacts, b: RunFacts): boolean {
  const ta = a.startedAt.getTime();
  const tb = b.startedAt.getTime();
  return ta !== tb ? ta > tb : a.id > b.id;
}

function referenceDecisions(runs: RunFacts[], policy: RetentionPolicy, now: Date, graceHours = 24): RetentionDecision[] {
  const ordered = [...runs].sort((a, b) => (newer(a, b) ? -1 : newer(b, a) ? 1 : 0));
  const reasons = new Map<string, string[]>(ordered.map((r) => [r.id, []]));
  const add = (r: RunFacts, why: string) => reasons.get(r.id)!.push(why);

  const isEmpty = Object.values(policy).every((n) => !n);
  if (isEmpty) return ordered.map((r) => ({ id: r.id, keep: true, reasons: ["no retention rules: keep all"] }));

  const future = (r: RunFacts) => r.startedAt.getTime() > now.getTime();
  for (const r of ordered) if (future(r)) add(r, "in the future: clock skew?");

  const pool = ordered.filter((r) => r.complete && !future(r));
  const last = policy.keep_last ?? 0;
  pool.slice(0, last).forEach((r, i) => add(r, `last ${i + 1} of ${last}`));

  for (const rule of referenceRules) {
    const n = policy[rule.key] ?? 0;
    if (n === 0) continue;
    const newestPerBucket = new Map<string, RunFacts>();
    for (const r of pool) {
      const label = rule.label(r.startedAt);
      const current = newestPerBucket.get(label);
      if (!current || newer(r, current)) newestPerBucket.set(label, r);
    }
    const buckets = [...newestPerBucket.entries()].sort(([, a], [, b]) => (newer(a, b) ? -1 : 1));
    for (const [label, r] of buckets.slice(0, n)) add(r, `${rule.name} ${label}`);
  }

  const services = [...new Set(pool.flatMap((r) => r.services))].sort();
  const serviceReasons = new Map<string, string[]>();
  for (const service of services) {
    const newest = pool.find((r) => r.services.includes(service))!;
    serviceReasons.set(newest.id, [...(serviceReasons.get(newest.id) ?? []), `newest complete run of service ${service}`]);
  }
  for (const r of pool) for (const why of serviceReasons.get(r.id) ?? []) add(r, why);

  const expired = new Set<string>();
  for (const r of ordered) {
    if (r.complete) continue;
    if (now.getTime() - r.startedAt.getTime() > graceHours * HOUR) {
      add(r, "incomplete, older than grace period");
      expired.add(r.id);
    } else {
      add(r, "incomplete, may still be running");
    }
  }

  return ordered.map((r) => {
    const why = reasons.get(r.id)!;
    if (why.length === 0) return { id: r.id, keep: false, reasons: ["not kept by any rule"] };
    return { id: r.id, keep: !expired.has(r.id) || future(r), reasons: why };
  });
}

// ---------------------------------------------------------------------------
// Two years of simulated history
// ---------------------------------------------------------------------------

const SIM_START = Date.UTC(2025, 0, 1); // 2025-01-01, a Wednesday in 2025-W01
const SIM_NOW = new Date("2027-01-02T06:30:00Z"); // inside 2026-W53

/**
 * An hourly stack: one run per hour at a random minute, with random missing
 * hours, a few multi-day outages, some hours with two runs, runs at exactly
 * hh:00:00.000 and hh:59:59.999, failing services, a service removed in mid-2025
 * and one added in late 2026, incomplete runs, and two runs from a skewed clock.
 */
function hourlyHistory(): RunFacts[] {
  const random = prng(0xc0ffee);
  const outages: Array<[number, number]> = [
    [Date.UTC(2025, 2, 3), Date.UTC(2025, 2, 9)], // a week in March 2025
    [Date.UTC(2025, 11, 24, 18), Date.UTC(2026, 0, 2, 7)], // over New Year 2026
    [Date.UTC(2026, 7, 1), Date.UTC(2026, 8, 1)], // all of August 2026: an empty month
  ];
  const runs: RunFacts[] = [];
  let n = 0;
  const push = (ms: number, complete: boolean, services: string[]) => {
    runs.push({ id: `h${String(n++).padStart(6, "0")}`, startedAt: new Date(ms), complete, services });
  };
  for (let hour = SIM_START; hour < SIM_NOW.getTime() - HOUR; hour += HOUR) {
    if (outages.some(([from, to]) => hour >= from && hour < to)) continue;
    if (random() < 0.12) continue; // a missing hour
    const roll = random();
    const offset = roll < 0.03 ? 0 : roll < 0.06 ? HOUR - 1 : Math.floor(random() * HOUR);
    const services = ["app"];
    if (random() > 0.05) services.push("db");
    if (hour < Date.UTC(2025, 6, 15)) services.push("cache");
    if (hour < Date.UTC(2025, 0, 8)) services.push("legacy");
    if (hour >= Date.UTC(2026, 10, 1) && random() > 0.3) services.push("search");
    push(hour + offset, random() > 0.02, services);
    if (random() < 0.04) push(hour + offset + Math.floor(random() * (HOUR - offset)), true, ["app", "db"]);
  }
  // Incomplete runs near "now": inside, at, and past the 24 h grace period.
  push(SIM_NOW.getTime() - 30 * 60_000, false, []);
  push(SIM_NOW.getTime() - 24 * HOUR, false, ["app"]);
  push(SIM_NOW.getTime() - 24 * HOUR - 1, false, ["app", "db"]);
  // A skewed clock.
  push(SIM_NOW.getTime() + 1, true, ["app", "db"]);
  push(SIM_NOW.getTime() + 3 * DAY, false, ["app"]);
  return runs;
}

/**
 * A daily stack scheduled around midnight: runs at 23:59:59.999 or 00:00:00.000,
 * random missing days, and some days with both (so one day gets two runs and the
 * next one none).
 */
function dailyHistory(): RunFacts[] {
  const random = prng(20261121);
  const runs: RunFacts[] = [];
  let n = 0;
  for (let day = SIM_START; day < SIM_NOW.getTime() - DAY; day += DAY) {
    if (random() < 0.2) continue;
    const times = random() < 0.1 ? [day, day + DAY - 1] : [random() < 0.5 ? day : day + DAY - 1];
    for (const ms of times) {
      const services = random() < 0.1 ? ["files"] : ["files", "postgres"];
      runs.push({ id: `d${String(n++).padStart(4, "0")}`, startedAt: new Date(ms), complete: random() > 0.03, services });
    }
  }
  return runs;
}

const histories: Array<[string, RunFacts[]]> = [
  ["an hourly stack", hourlyHistory()],
  ["a daily stack scheduled around midnight", dailyHistory()],
];

const simPolicies: Array<[string, RetentionPolicy]> = [
  ["keep_last 5", { keep_last: 5 }],
  ["keep_hourly 48", { keep_hourly: 48 }],
  ["keep_hourly larger than the history", { keep_hourly: 100_000 }],
  ["keep_daily 7", { keep_daily: 7 }],
  ["keep_daily 45", { keep_daily: 45 }],
  ["keep_weekly 8", { keep_weekly: 8 }],
  ["keep_weekly 70", { keep_weekly: 70 }],
  ["keep_monthly 14", { keep_monthly: 14 }],
  ["keep_yearly 5", { keep_yearly: 5 }],
  ["a typical restic policy", { keep_last: 3, keep_hourly: 24, keep_daily: 7, keep_weekly: 4, keep_monthly: 12, keep_yearly: 3 }],
  ["zero counts next to a daily rule", { keep_last: 0, keep_daily: 3, keep_weekly: 0 }],
];

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe("decideRetention: keep_last", () => {
  test("keep_last 3 keeps the three newest complete runs and deletes the rest", () => {
    const runs = [
      run("r1", "2026-11-01T02:00:00Z"),
      run("r2", "2026-11-02T02:00:00Z"),
      run("r3", "2026-11-03T02:00:00Z"),
      run("r4", "2026-11-04T02:00:00Z"),
      run("r5", "2026-11-05T02:00:00Z"),
    ];
    const decisions = decideRetention(runs, { keep_last: 3 }, new Date("2026-11-06T00:00:00Z"));
    assert.deepEqual(decisions, [
      { id: "r5", keep: true, reasons: ["last 1 of 3", "newest complete run of service db"] },
      { id: "r4", keep: true, reasons: ["last 2 of 3"] },
      { id: "r3", keep: true, reasons: ["last 3 of 3"] },
      { id: "r2", keep: false, reasons: ["not kept by any rule"] },
      { id: "r1", keep: false, reasons: ["not kept by any rule"] },
    ]);
  });

  test("keep_last larger than the number of runs keeps them all", () => {
    const runs = [run("a", "2026-01-01T00:00:00Z"), run("b", "2026-01-02T00:00:00Z")];
    assert.deepEqual(keptIds(decideRetention(runs, { keep_last: 10 }, new Date("2026-02-01T00:00:00Z"))), ["a", "b"]);
  });
});

describe("decideRetention: calendar buckets", () => {
  test("keep_hourly keeps the newest run of each hour and skips hours without runs", () => {
    const runs = [
      run("10:05", "2026-05-04T10:05:00Z"),
      run("10:40", "2026-05-04T10:40:00Z"),
      run("12:10", "2026-05-04T12:10:00Z"),
      run("15:00", "2026-05-04T15:00:00Z"),
      run("15:30", "2026-05-04T15:30:00Z"),
      run("15:59", "2026-05-04T15:59:59.999Z"),
    ];
    const decisions = decideRetention(runs, { keep_hourly: 3 }, new Date("2026-05-04T16:00:00Z"));
    assert.deepEqual(keptIds(decisions), ["10:40", "12:10", "15:59"]);
    assert.deepEqual(reasonsOf(decisions, "10:40"), ["hourly 2026-05-04T10:00Z"]);
    assert.deepEqual(reasonsOf(decisions, "12:10"), ["hourly 2026-05-04T12:00Z"]);
  });

  test("keep_daily counts only days that have runs, so gaps do not use up a slot", () => {
    const runs = [
      run("jan1-morning", "2026-01-01T10:00:00Z"),
      run("jan1-evening", "2026-01-01T20:00:00Z"),
      run("jan2", "2026-01-02T08:00:00Z"),
      run("jan5", "2026-01-05T12:00:00Z"),
      run("jan9-morning", "2026-01-09T09:00:00Z"),
      run("jan9-evening", "2026-01-09T18:00:00Z"),
    ];
    const decisions = decideRetention(runs, { keep_daily: 3 }, new Date("2026-02-01T00:00:00Z"));
    assert.deepEqual(keptIds(decisions), ["jan2", "jan5", "jan9-evening"]);
    assert.deepEqual(reasonsOf(decisions, "jan5"), ["daily 2026-01-05"]);
  });

  test("a run at 23:59:59.999 and a run at 00:00:00.000 fall in different hours and days", () => {
    const runs = [
      run("before-midnight", "2026-03-01T23:59:59.999Z"),
      run("midnight", "2026-03-02T00:00:00.000Z"),
      run("after-midnight", "2026-03-02T00:00:01.000Z"),
    ];
    const now = new Date("2026-03-03T00:00:00Z");
    const daily = decideRetention(runs, { keep_daily: 2 }, now);
    assert.deepEqual(keptIds(daily), ["after-midnight", "before-midnight"]);
    assert.deepEqual(reasonsOf(daily, "before-midnight"), ["daily 2026-03-01"]);
    const hourly = decideRetention(runs, { keep_hourly: 2 }, now);
    assert.deepEqual(keptIds(hourly), ["after-midnight", "before-midnight"]);
    assert.deepEqual(reasonsOf(hourly, "before-midnight"), ["hourly 2026-03-01T23:00Z"]);
  });

  test("month and year boundaries are cut at midnight UTC", () => {
    const runs = [
      run("jan-last", "2026-01-31T23:59:59.999Z"),
      run("feb-first", "2026-02-01T00:00:00.000Z"),
      run("dec-last", "2026-12-31T23:59:59.999Z"),
      run("jan-2027", "2027-01-01T00:00:00.000Z"),
    ];
    const now = new Date("2027-01-02T00:00:00Z");
    const monthly = decideRetention(runs, { keep_monthly: 3 }, now);
    assert.deepEqual(keptIds(monthly), ["dec-last", "feb-first", "jan-2027"]);
    assert.deepEqual(reasonsOf(monthly, "feb-first"), ["monthly 2026-02"]);
    const yearly = decideRetention(runs, { keep_yearly: 2 }, now);
    assert.deepEqual(keptIds(yearly), ["dec-last", "jan-2027"]);
    assert.deepEqual(reasonsOf(yearly, "dec-last"), ["yearly 2026"]);
  });

  test("keep_monthly skips months without runs", () => {
    const runs = [
      run("2026-01", "2026-01-15T00:00:00Z"),
      run("2026-02", "2026-02-15T00:00:00Z"),
      run("2026-06-early", "2026-06-01T00:00:00Z"),
      run("2026-06-late", "2026-06-30T00:00:00Z"),
      run("2026-11", "2026-11-15T00:00:00Z"),
    ];
    const decisions = decideRetention(runs, { keep_monthly: 3 }, new Date("2026-12-01T00:00:00Z"));
    assert.deepEqual(keptIds(decisions), ["2026-02", "2026-06-late", "2026-11"]);
  });

  test("keep_weekly uses ISO week 53 of 2026, which runs from Monday 28 December to Sunday 3 January 2027", () => {
    const runs = [
      run("sun-27-dec", "2026-12-27T12:00:00Z"), // 2026-W52
      run("mon-28-dec", "2026-12-28T00:00:00Z"), // 2026-W53
      run("fri-1-jan", "2027-01-01T12:00:00Z"), // 2026-W53, although it is 2027
      run("sun-3-jan", "2027-01-03T23:59:59.999Z"), // 2026-W53, its last instant
      run("mon-4-jan", "2027-01-04T00:00:00Z"), // 2027-W01
    ];
    const decisions = decideRetention(runs, { keep_weekly: 3 }, new Date("2027-01-05T00:00:00Z"));
    assert.deepEqual(keptIds(decisions), ["mon-4-jan", "sun-27-dec", "sun-3-jan"]);
    assert.deepEqual(reasonsOf(decisions, "mon-4-jan"), ["weekly 2027-W01", "newest complete run of service db"]);
    assert.deepEqual(reasonsOf(decisions, "sun-3-jan"), ["weekly 2026-W53"]);
    assert.deepEqual(reasonsOf(decisions, "sun-27-dec"), ["weekly 2026-W52"]);
  });

  test("keep_weekly puts Monday 30 December 2024 in week 1 of the ISO week-year 2025", () => {
    const runs = [
      run("sun-29-dec-2024", "2024-12-29T23:00:00Z"), // 2024-W52
      run("mon-30-dec-2024", "2024-12-30T01:00:00Z"), // 2025-W01
      run("sun-5-jan-2025", "2025-01-05T10:00:00Z"), // 2025-W01
    ];
    const decisions = decideRetention(runs, { keep_weekly: 2, keep_yearly: 2 }, new Date("2025-01-06T00:00:00Z"));
    assert.deepEqual(decisions, [
      { id: "sun-5-jan-2025", keep: true, reasons: ["weekly 2025-W01", "yearly 2025", "newest complete run of service db"] },
      // Not the newest of 2025-W01, but the newest of the calendar year 2024:
      // the yearly rule uses the calendar year, not the ISO week-year.
      { id: "mon-30-dec-2024", keep: true, reasons: ["yearly 2024"] },
      { id: "sun-29-dec-2024", keep: true, reasons: ["weekly 2024-W52"] },
    ]);
  });

  test("keep_weekly names the week of Sunday 3 January 2021 as 2020-W53", () => {
    const decisions = decideRetention([run("a", "2021-01-03T08:00:00Z")], { keep_weekly: 1 }, new Date("2021-02-01"));
    assert.deepEqual(reasonsOf(decisions, "a"), ["weekly 2020-W53", "newest complete run of service db"]);
  });

  test("a run kept by several rules lists every reason, in rule order", () => {
    const runs = [run("newest", "2026-11-21T13:20:00Z"), run("older", "2026-11-21T13:10:00Z")];
    const policy = { keep_yearly: 1, keep_monthly: 1, keep_weekly: 1, keep_daily: 1, keep_hourly: 1, keep_last: 1 };
    const decisions = decideRetention(runs, policy, new Date("2026-11-21T14:00:00Z"));
    assert.deepEqual(decisions, [
      {
        id: "newest",
        keep: true,
        reasons: [
          "last 1 of 1",
          "hourly 2026-11-21T13:00Z",
          "daily 2026-11-21",
          "weekly 2026-W47",
          "monthly 2026-11",
          "yearly 2026",
          "newest complete run of service db",
        ],
      },
      { id: "older", keep: false, reasons: ["not kept by any rule"] },
    ]);
  });

  test("hourly buckets ignore daylight saving time, because they are cut in UTC", () => {
    // Europe switched to summer time at 01:00 UTC on 2026-03-29; the US at 07:00 UTC on 2026-03-08.
    const runs: RunFacts[] = [];
    for (let ms = Date.parse("2026-03-29T00:00:00Z"); ms <= Date.parse("2026-03-29T02:30:00Z"); ms += 30 * 60_000) {
      runs.push(run(new Date(ms).toISOString().slice(11, 16), new Date(ms).toISOString()));
    }
    const now = new Date("2026-03-29T03:00:00Z");
    for (const tz of ["UTC", "Europe/Berlin", "America/New_York"]) {
      const decisions = withTimeZone(tz, () => decideRetention(runs, { keep_hourly: 3 }, now));
      assert.deepEqual(keptIds(decisions), ["00:30", "01:30", "02:30"], tz);
      assert.deepEqual(reasonsOf(decisions, "00:30"), ["hourly 2026-03-29T00:00Z"], tz);
    }
  });
});

describe("decideRetention: two years of simulated runs", () => {
  for (const [historyName, runs] of histories) {
    for (const [policyName, policy] of simPolicies) {
      test(`${policyName} on ${historyName} keeps exactly the runs the reference model keeps`, () => {
        const actual = decideRetention(runs, policy, SIM_NOW);
        const expected = referenceDecisions(runs, policy, SIM_NOW);
        assertSameIds(keptIds(actual), keptIds(expected));
        assert.deepEqual(actual, expected);
      });
    }
  }

  test("keep_daily 7 on the daily stack keeps the newest run of each of the 7 newest days with runs", () => {
    const runs = histories[1]![1];
    const complete = runs.filter((r) => r.complete);
    const days = [...new Set(complete.map((r) => r.startedAt.toISOString().slice(0, 10)))].sort().reverse().slice(0, 7);
    const expected = days.map((day) => {
      const ofDay = complete.filter((r) => r.startedAt.toISOString().startsWith(day));
      return ofDay.reduce((a, b) => (b.startedAt > a.startedAt ? b : a)).id;
    });
    const decisions = decideRetention(runs, { keep_daily: 7 }, SIM_NOW);
    const keptByDaily = decisions.filter((d) => d.reasons.some((r) => r.startsWith("daily "))).map((d) => d.id);
    assertSameIds(keptByDaily, expected);
    assert.equal(keptByDaily.length, 7);
  });

  test("keep_weekly on the hourly stack labels the last week of 2025 as 2026-W01 and the last week of 2026 as 2026-W53", () => {
    const decisions = decideRetention(histories[0]![1], { keep_weekly: 60 }, SIM_NOW);
    const weeks = decisions.flatMap((d) => d.reasons.filter((r) => r.startsWith("weekly ")));
    assert.equal(weeks[0], "weekly 2026-W53");
    assert.ok(weeks.includes("weekly 2026-W01"));
    assert.ok(weeks.includes("weekly 2025-W52"));
    assert.ok(!weeks.includes("weekly 2025-W53"), "2025 has only 52 ISO weeks");
  });

  test("keep_monthly on the hourly stack skips August 2026, which had no runs", () => {
    const decisions = decideRetention(histories[0]![1], { keep_monthly: 14 }, SIM_NOW);
    const months = decisions.flatMap((d) => d.reasons.filter((r) => r.startsWith("monthly ")));
    assert.equal(months.length, 14);
    assert.ok(!months.includes("monthly 2026-08"));
    assert.equal(months.at(-1), "monthly 2025-11");
  });

  test("the decisions do not depend on the machine's time zone", () => {
    const policy = { keep_last: 2, keep_hourly: 30, keep_daily: 10, keep_weekly: 10, keep_monthly: 10, keep_yearly: 10 };
    for (const [name, runs] of histories) {
      const inUtc = withTimeZone("UTC", () => decideRetention(runs, policy, SIM_NOW));
      for (const tz of ["America/New_York", "Pacific/Chatham", "Asia/Kolkata", "Australia/Lord_Howe"]) {
        const elsewhere = withTimeZone(tz, () => {
          assert.notEqual(new Date("2026-07-01T00:00:00Z").getTimezoneOffset(), 0, `${tz} should not be UTC`);
          return decideRetention(runs, policy, SIM_NOW);
        });
        assert.deepEqual(elsewhere, inUtc, `${name} in ${tz}`);
      }
    }
  });
});

describe("decideRetention: the newest run of every service is safe", () => {
  const random = prng(7);
  const randomPolicies: RetentionPolicy[] = Array.from({ length: 40 }, () => {
    const policy: RetentionPolicy = {};
    for (const key of ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"] as const) {
      if (random() < 0.4) policy[key] = Math.floor(random() * 4);
    }
    return policy;
  });
  const policies = [...simPolicies.map(([, p]) => p), { keep_last: 1 }, { keep_yearly: 1 }, ...randomPolicies];

  test("the newest complete run of each service survives every policy", () => {
    for (const [historyName, runs] of histories) {
      const services = [...new Set(runs.flatMap((r) => r.services))];
      const complete = runs.filter((r) => r.complete);
      const present = complete.filter((r) => r.startedAt <= SIM_NOW);
      const newestWith = (pool: RunFacts[], service: string) =>
        pool.filter((r) => r.services.includes(service)).reduce((a, b) => (newer(b, a) ? b : a));
      for (const policy of policies) {
        const kept = new Set(keptIds(decideRetention(runs, policy, SIM_NOW)));
        for (const service of services) {
          for (const pool of [complete, present]) {
            const newest = newestWith(pool, service);
            assert.ok(kept.has(newest.id), `${historyName}: ${JSON.stringify(policy)} deleted ${newest.id}, the newest run of ${service}`);
          }
        }
      }
    }
  });

  test("a service that is no longer backed up keeps its last good run even when no rule keeps it", () => {
    const runs = [
      run("old", "2026-01-01T00:00:00Z", { services: ["db", "legacy"] }),
      run("mid", "2026-01-02T00:00:00Z", { services: ["db"] }),
      run("new", "2026-01-03T00:00:00Z", { services: ["db"] }),
    ];
    const decisions = decideRetention(runs, { keep_last: 1 }, new Date("2026-01-04T00:00:00Z"));
    assert.deepEqual(keptIds(decisions), ["new", "old"]);
    assert.deepEqual(reasonsOf(decisions, "old"), ["newest complete run of service legacy"]);
    assert.deepEqual(reasonsOf(decisions, "mid"), ["not kept by any rule"]);
  });

  test("a run whose backup of a service failed does not count as that service's newest run", () => {
    const runs = [
      run("db-ok", "2026-01-01T00:00:00Z", { services: ["db", "web"] }),
      run("db-failed", "2026-01-02T00:00:00Z", { services: ["web"] }),
    ];
    const decisions = decideRetention(runs, { keep_last: 1 }, new Date("2026-01-03T00:00:00Z"));
    assert.deepEqual(decisions, [
      { id: "db-failed", keep: true, reasons: ["last 1 of 1", "newest complete run of service web"] },
      { id: "db-ok", keep: true, reasons: ["newest complete run of service db"] },
    ]);
  });

  test("services an incomplete run lists do not protect it or replace the last complete run of that service", () => {
    const runs = [
      run("complete", "2026-01-01T00:00:00Z", { services: ["db", "cache"] }),
      run("newer-complete", "2026-01-02T00:00:00Z", { services: ["db"] }),
      run("incomplete", "2026-01-03T00:00:00Z", { complete: false, services: ["db", "cache"] }),
    ];
    const decisions = decideRetention(runs, { keep_last: 1 }, new Date("2026-01-05T00:00:00Z"));
    assert.deepEqual(decisions, [
      { id: "incomplete", keep: false, reasons: ["incomplete, older than grace period"] },
      { id: "newer-complete", keep: true, reasons: ["last 1 of 1", "newest complete run of service db"] },
      { id: "complete", keep: true, reasons: ["newest complete run of service cache"] },
    ]);
  });
});

describe("decideRetention: incomplete runs", () => {
  const now = new Date("2026-06-10T12:00:00Z");
  const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();

  test("an incomplete run is kept while it is within the 24 hour grace period, including exactly 24 hours old", () => {
    const runs = [
      run("fresh", ago(5 * 60_000), { complete: false, services: [] }),
      run("almost", ago(24 * HOUR - 1), { complete: false, services: [] }),
      run("exactly", ago(24 * HOUR), { complete: false, services: [] }),
      run("expired", ago(24 * HOUR + 1), { complete: false, services: [] }),
      run("ancient", ago(400 * DAY), { complete: false, services: [] }),
      run("good", ago(30 * DAY)),
    ];
    const decisions = decideRetention(runs, { keep_daily: 7 }, now);
    assert.deepEqual(decisions, [
      { id: "fresh", keep: true, reasons: ["incomplete, may still be running"] },
      { id: "almost", keep: true, reasons: ["incomplete, may still be running"] },
      { id: "exactly", keep: true, reasons: ["incomplete, may still be running"] },
      { id: "expired", keep: false, reasons: ["incomplete, older than grace period"] },
      { id: "good", keep: true, reasons: ["daily 2026-05-11", "newest complete run of service db"] },
      { id: "ancient", keep: false, reasons: ["incomplete, older than grace period"] },
    ]);
  });

  test("the grace period can be shortened or lengthened", () => {
    const runs = [
      run("3h", ago(3 * HOUR), { complete: false }),
      run("30h", ago(30 * HOUR), { complete: false }),
      run("good", ago(40 * HOUR)),
    ];
    assert.deepEqual(keptIds(decideRetention(runs, { keep_last: 1 }, now, { incompleteGraceHours: 2 })), ["good"]);
    assert.deepEqual(keptIds(decideRetention(runs, { keep_last: 1 }, now, { incompleteGraceHours: 48 })), ["30h", "3h", "good"]);
    assert.deepEqual(keptIds(decideRetention(runs, { keep_last: 1 }, now, { incompleteGraceHours: 0 })), ["good"]);
  });

  test("incomplete runs are never kept by a rule and do not use up a rule's slot", () => {
    const runs = [
      run("complete-old", "2026-06-01T10:00:00Z"),
      run("incomplete-jun5", "2026-06-05T10:00:00Z", { complete: false }),
      run("complete-new", "2026-06-08T10:00:00Z"),
      run("incomplete-recent", "2026-06-10T11:00:00Z", { complete: false }),
    ];
    const decisions = decideRetention(runs, { keep_last: 2, keep_daily: 2 }, now);
    assert.deepEqual(decisions, [
      { id: "incomplete-recent", keep: true, reasons: ["incomplete, may still be running"] },
      { id: "complete-new", keep: true, reasons: ["last 1 of 2", "daily 2026-06-08", "newest complete run of service db"] },
      { id: "incomplete-jun5", keep: false, reasons: ["incomplete, older than grace period"] },
      { id: "complete-old", keep: true, reasons: ["last 2 of 2", "daily 2026-06-01"] },
    ]);
  });
});

describe("decideRetention: runs from the future", () => {
  test("a run that started after now is kept and does not push a real run out of keep_last", () => {
    const runs = [
      run("yesterday", "2026-06-09T12:00:00Z"),
      run("today", "2026-06-10T11:00:00Z"),
      run("tomorrow", "2026-06-11T12:00:00Z"),
      run("next-year-incomplete", "2027-06-11T12:00:00Z", { complete: false }),
    ];
    const decisions = decideRetention(runs, { keep_last: 1 }, new Date("2026-06-10T12:00:00Z"));
    assert.deepEqual(decisions, [
      { id: "next-year-incomplete", keep: true, reasons: ["in the future: clock skew?", "incomplete, may still be running"] },
      { id: "tomorrow", keep: true, reasons: ["in the future: clock skew?"] },
      { id: "today", keep: true, reasons: ["last 1 of 1", "newest complete run of service db"] },
      { id: "yesterday", keep: false, reasons: ["not kept by any rule"] },
    ]);
  });

  test("a run that started exactly at now is not in the future", () => {
    const decisions = decideRetention([run("now", "2026-06-10T12:00:00Z")], { keep_last: 1 }, new Date("2026-06-10T12:00:00Z"));
    assert.deepEqual(reasonsOf(decisions, "now"), ["last 1 of 1", "newest complete run of service db"]);
  });
});

describe("decideRetention: empty policies", () => {
  const runs = [
    run("old", "2020-01-01T00:00:00Z"),
    run("incomplete-old", "2021-01-01T00:00:00Z", { complete: false }),
    run("recent", "2026-06-10T00:00:00Z"),
    run("future", "2030-01-01T00:00:00Z"),
  ];
  const now = new Date("2026-06-11T00:00:00Z");

  for (const [name, policy] of [
    ["an empty policy", {}],
    ["a policy whose counts are all 0", { keep_last: 0, keep_hourly: 0, keep_daily: 0, keep_weekly: 0, keep_monthly: 0, keep_yearly: 0 }],
  ] as const) {
    test(`${name} keeps every run and says so`, () => {
      const decisions = decideRetention(runs, policy, now);
      assert.deepEqual(
        decisions,
        ["future", "recent", "incomplete-old", "old"].map((id) => ({ id, keep: true, reasons: ["no retention rules: keep all"] })),
      );
    });
  }

  test("no runs give no decisions", () => {
    assert.deepEqual(decideRetention([], { keep_last: 3 }, now), []);
    assert.deepEqual(decideRetention([], {}, now), []);
  });
});

describe("decideRetention: output and determinism", () => {
  test("there is one decision per input run, sorted newest first, whatever the input order", () => {
    const runs = histories[0]![1].slice(0, 500);
    const shuffled = [...runs];
    const random = prng(99);
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    const policy = { keep_last: 5, keep_hourly: 10, keep_daily: 3 };
    const now = new Date("2025-02-01T00:00:00Z");
    const a = decideRetention(runs, policy, now);
    const b = decideRetention(shuffled, policy, now);
    assert.deepEqual(b, a);
    assert.equal(a.length, runs.length);
    assertSameIds(a.map((d) => d.id), runs.map((r) => r.id));
    const times = new Map(runs.map((r) => [r.id, r.startedAt.getTime()]));
    for (let i = 1; i < a.length; i++) assert.ok(times.get(a[i - 1]!.id)! >= times.get(a[i]!.id)!);
  });

  test("runs that started at the same instant are ordered by id, the greater id counting as newer", () => {
    const runs = [run("run-a", "2026-01-01T00:00:00Z"), run("run-b", "2026-01-01T00:00:00Z")];
    const decisions = decideRetention(runs, { keep_daily: 1 }, new Date("2026-01-02T00:00:00Z"));
    assert.deepEqual(decisions, [
      { id: "run-b", keep: true, reasons: ["daily 2026-01-01", "newest complete run of service db"] },
      { id: "run-a", keep: false, reasons: ["not kept by any rule"] },
    ]);
  });

  test("the input runs are not modified", () => {
    const runs = [run("b", "2026-01-02T00:00:00Z", { services: ["z", "a", "a"] }), run("a", "2026-01-01T00:00:00Z")];
    const copy = structuredClone(runs);
    decideRetention(runs, { keep_last: 1 }, new Date("2026-02-01T00:00:00Z"));
    assert.deepEqual(runs, copy);
  });

  test("a run with an invalid start time is kept and listed last", () => {
    const runs = [run("broken", "not a date"), run("ok", "2026-01-01T00:00:00Z"), run("older", "2025-01-01T00:00:00Z")];
    const decisions = decideRetention(runs, { keep_last: 1 }, new Date("2026-02-01T00:00:00Z"));
    assert.deepEqual(decisions, [
      { id: "ok", keep: true, reasons: ["last 1 of 1", "newest complete run of service db"] },
      { id: "older", keep: false, reasons: ["not kept by any rule"] },
      { id: "broken", keep: true, reasons: ["invalid start time: keep"] },
    ]);
  });

  test("duplicate run ids, an invalid now, a bad grace period and an unknown time zone are rejected", () => {
    const now = new Date("2026-02-01T00:00:00Z");
    const runs = [run("same", "2026-01-01T00:00:00Z"), run("same", "2026-01-02T00:00:00Z")];
    assert.throws(() => decideRetention(runs, { keep_last: 1 }, now), { name: "RangeError", message: /duplicate run id "same"/ });
    assert.throws(() => decideRetention([], { keep_last: 1 }, new Date("nope")), RangeError);
    assert.throws(() => decideRetention([], { keep_last: 1 }, now, { incompleteGraceHours: -1 }), RangeError);
    assert.throws(() => decideRetention([], { keep_last: 1 }, now, { incompleteGraceHours: Number.NaN }), RangeError);
    assert.throws(() => decideRetention([], { keep_last: 1 }, now, { timeZone: "Europe/Berlin" as "UTC" }), RangeError);
  });

  test("an invalid policy passed straight to decideRetention is rejected before anything is decided", () => {
    assert.throws(() => decideRetention([], { keep_daily: -1 }, new Date()), z.ZodError);
  });
});

describe("retentionPolicySchema", () => {
  function issuesOf(input: unknown): Array<{ path: (string | number)[]; message: string }> {
    const result = retentionPolicySchema.safeParse(input);
    assert.equal(result.success, false, `expected ${JSON.stringify(input)} to be rejected`);
    return result.error!.issues.map(({ path, message }) => ({ path, message }));
  }

  test("accepts non-negative integer counts and an empty policy", () => {
    const policy = { keep_last: 3, keep_hourly: 24, keep_daily: 7, keep_weekly: 4, keep_monthly: 12, keep_yearly: 0 };
    assert.deepEqual(retentionPolicySchema.parse(policy), policy);
    assert.deepEqual(retentionPolicySchema.parse({}), {});
  });

  test("rejects a negative count with a message naming the setting", () => {
    assert.deepEqual(issuesOf({ keep_daily: -1 }), [{ path: ["keep_daily"], message: "keep_daily must be 0 or more" }]);
  });

  test("rejects fractional, non-finite and non-numeric counts", () => {
    assert.deepEqual(issuesOf({ keep_weekly: 1.5 }), [{ path: ["keep_weekly"], message: "keep_weekly must be a whole number" }]);
    assert.deepEqual(issuesOf({ keep_last: "7" }), [{ path: ["keep_last"], message: "keep_last must be a number" }]);
    assert.equal(issuesOf({ keep_yearly: Number.POSITIVE_INFINITY })[0]!.path[0], "keep_yearly");
    assert.equal(issuesOf({ keep_monthly: Number.NaN })[0]!.path[0], "keep_monthly");
  });

  test("rejects unknown keys, such as a typo or a restic option it does not support", () => {
    const [issue, ...rest] = issuesOf({ keep_dialy: 7, keep_within: "30d" });
    assert.deepEqual(rest, []);
    assert.deepEqual(issue!.path, []);
    assert.equal(
      issue!.message,
      'unknown retention settings "keep_dialy", "keep_within"; allowed: keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly',
    );
    assert.match(issuesOf({ keep_dialy: 7 })[0]!.message, /^unknown retention setting "keep_dialy"; allowed:/);
  });

  test("rejects something that is not an object", () => {
    for (const input of [null, 7, "keep_last=3", [1, 2]]) {
      assert.match(issuesOf(input)[0]!.message, /^retention policy must be an object of keep_last, /);
    }
  });
});

describe("decideRetention: evidence of a suspected data loss", () => {
  const now = new Date("2026-03-10T12:00:00Z");
  const lost = { db: ["shop.orders"] };

  test("keep_last 1: the run before the first suspect run is kept, and the reason says why and what lets it go", () => {
    const runs = [run("a", "2026-03-07T02:00:00Z"), run("b", "2026-03-08T02:00:00Z"), run("c", "2026-03-09T02:00:00Z", { suspect: lost })];
    const decisions = decideRetention(runs, { keep_last: 1 }, now);
    assert.deepEqual(keptIds(decisions), ["b", "c"]);
    assert.deepEqual(reasonsOf(decisions, "b"), ["last good run before suspected loss on shop.orders (service db in run c; 'make accept RUN=c' lets it go)"]);
  });

  test("later suspect runs do not move the guard: it stays before the oldest suspect run", () => {
    const runs = [run("a", "2026-03-05T02:00:00Z"), run("b", "2026-03-06T02:00:00Z"), run("c", "2026-03-07T02:00:00Z", { suspect: lost }), run("d", "2026-03-08T02:00:00Z"), run("e", "2026-03-09T02:00:00Z", { suspect: { db: ["shop.items"] } })];
    assert.deepEqual(keptIds(decideRetention(runs, { keep_last: 1 }, now)), ["b", "e"]);
  });

  test("once accepted (no longer suspect), the next suspect run guards its own predecessor, and nothing guards without one", () => {
    const runs = [run("b", "2026-03-06T02:00:00Z"), run("c", "2026-03-07T02:00:00Z"), run("d", "2026-03-08T02:00:00Z"), run("e", "2026-03-09T02:00:00Z", { suspect: lost })];
    assert.deepEqual(keptIds(decideRetention(runs, { keep_last: 1 }, now)), ["d", "e"]);
    assert.deepEqual(keptIds(decideRetention(runs.map((entry) => ({ ...entry, suspect: undefined })), { keep_last: 1 }, now)), ["e"]);
  });

  test("the guarded run is the newest before the suspect run that holds the service, per service", () => {
    const runs = [
      run("a", "2026-03-05T02:00:00Z", { services: ["db", "cache"] }),
      run("b", "2026-03-06T02:00:00Z", { services: ["cache"] }),
      run("c", "2026-03-07T02:00:00Z", { services: ["db", "cache"], suspect: lost }),
      run("d", "2026-03-08T02:00:00Z", { services: ["db", "cache"], suspect: { cache: ["db0"] } }),
    ];
    const decisions = decideRetention(runs, { keep_last: 1 }, now);
    assert.deepEqual(keptIds(decisions), ["a", "c", "d"]);
    assert.match(reasonsOf(decisions, "a").join(), /loss on shop.orders \(service db in run c/);
    assert.match(reasonsOf(decisions, "c").join(), /loss on db0 \(service cache in run d/);
  });

  test("an empty list of losses is no suspicion; incomplete and future runs never count", () => {
    const runs = [run("a", "2026-03-07T02:00:00Z"), run("b", "2026-03-08T02:00:00Z", { suspect: { db: [] } }), run("c", "2026-03-09T02:00:00Z", { complete: false, suspect: lost }), run("z", "2026-04-01T02:00:00Z", { suspect: lost })];
    assert.deepEqual(keptIds(decideRetention(runs, { keep_last: 1 }, now, { incompleteGraceHours: 1 })), ["b", "z"]);
  });
});

describe("decideRetention: requireVerified", () => {
  const now = new Date("2026-03-10T12:00:00Z");
  const reason = (services: string) => `no newer run of ${services} has passed make verify yet (retention.require_verified)`;

  test("an unverified newer run does not let an older one go; a verified one does", () => {
    const runs = [run("a", "2026-03-08T02:00:00Z"), run("b", "2026-03-09T02:00:00Z")];
    const waiting = decideRetention(runs, { keep_last: 1 }, now, { requireVerified: true });
    assert.deepEqual(keptIds(waiting), ["a", "b"]);
    assert.deepEqual(reasonsOf(waiting, "a"), [reason("db")]);
    assert.deepEqual(keptIds(decideRetention([runs[0], { ...runs[1], verified: ["db"] }], { keep_last: 1 }, now, { requireVerified: true })), ["b"]);
  });

  test("off by default", () => {
    assert.deepEqual(keptIds(decideRetention([run("a", "2026-03-08T02:00:00Z"), run("b", "2026-03-09T02:00:00Z")], { keep_last: 1 }, now)), ["b"]);
  });

  test("each of the run's services needs its own newer verified run", () => {
    const runs = [run("a", "2026-03-07T02:00:00Z", { services: ["db", "cache"] }), run("b", "2026-03-08T02:00:00Z", { services: ["db"], verified: ["db"] }), run("c", "2026-03-09T02:00:00Z", { services: ["db", "cache"] })];
    const decisions = decideRetention(runs, { keep_last: 1 }, now, { requireVerified: true });
    assert.deepEqual(keptIds(decisions), ["a", "b", "c"]);
    assert.deepEqual(reasonsOf(decisions, "a"), [reason("cache")]);
    assert.deepEqual(reasonsOf(decisions, "b"), [reason("db")]);
  });

  test("the newest verified run of a service is never deleted, so every deleted run has a verified successor", () => {
    const runs = ["01", "02", "03", "04", "05"].map((day, index) => run(day, `2026-03-${day}T02:00:00Z`, { verified: index % 2 === 0 ? ["db"] : [] }));
    const decisions = decideRetention(runs, { keep_last: 1 }, now, { requireVerified: true });
    assert.deepEqual(keptIds(decisions), ["05"]);
    const waiting = decideRetention(runs.map((entry) => (entry.id === "05" ? { ...entry, verified: [] } : entry)), { keep_last: 1 }, now, { requireVerified: true });
    assert.deepEqual(keptIds(waiting), ["03", "04", "05"]);
  });

  test("a complete run without services, and runs already kept, need nothing more", () => {
    const runs = [run("a", "2026-03-08T02:00:00Z", { services: [] }), run("b", "2026-03-09T02:00:00Z")];
    const decisions = decideRetention(runs, { keep_last: 1 }, now, { requireVerified: true });
    assert.deepEqual(keptIds(decisions), ["b"]);
    assert.deepEqual(reasonsOf(decisions, "b"), ["last 1 of 1", "newest complete run of service db"]);
  });
});
