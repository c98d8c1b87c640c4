/**
 * Grandfather-father-son retention for backup runs, as a pure function.
 *
 * The model is restic's `forget --keep-*`, which most operators already know.
 * `decideRetention(runs, policy, now)` returns one decision per input run,
 * sorted newest first, and never looks at the clock or the machine's time zone
 * itself: everything is derived from its arguments, so the same input always
 * gives the same output.
 *
 * Order
 *   Runs are ordered by `startedAt`, newest first. Runs that started at the
 *   same instant are ordered by `id`, the greater id (plain code-unit
 *   comparison, not locale-aware) counting as the newer one. So the result never
 *   depends on the order of the input array.
 *
 * Which runs the keep rules look at
 *   Only complete runs (runs with a manifest) whose start time is valid and not
 *   after `now`. Incomplete runs and runs from the future are never kept by a
 *   rule and never use up a rule's slot.
 *
 * keep_last N
 *   Keeps the N newest of those runs. Reason: "last 1 of N", "last 2 of N", ...
 *
 * keep_hourly / keep_daily / keep_weekly / keep_monthly / keep_yearly N
 *   The runs are put in buckets by period, computed in UTC:
 *     hourly   the UTC hour                       reason "hourly 2026-11-21T13:00Z"
 *     daily    the UTC calendar day               reason "daily 2026-11-21"
 *     weekly   the ISO 8601 week (weeks start on
 *              Monday; the week-year is the year
 *              of the week's Thursday, so
 *              2024-12-30 is in 2025-W01 and
 *              2027-01-03 is in 2026-W53)         reason "weekly 2026-W47"
 *     monthly  the UTC calendar month             reason "monthly 2026-11"
 *     yearly   the UTC calendar year              reason "yearly 2026"
 *   The rule keeps the newest run of each of the N most recent buckets that
 *   contain a run. Empty periods (gaps) do not use up a slot: keep_daily 7 keeps
 *   seven runs from seven different days if there are that many days with runs,
 *   however far apart they are. A count of 0 or an absent count disables a rule.
 *
 *   A run may be kept by several rules; every reason is listed, in the order
 *   last, hourly, daily, weekly, monthly, yearly.
 *
 * Empty policy
 *   A policy whose counts are all 0 or absent keeps every run (complete or not)
 *   with the single reason "no retention rules: keep all". Deleting everything
 *   because of an empty policy is never what an operator meant.
 *
 * Safety net: the newest run of every service
 *   For every service, the newest complete, non-future run that lists the
 *   service in `services` is kept, even if no rule keeps it. Reason: "newest
 *   complete run of service db". The reason is listed even when a rule keeps the
 *   run too. This means a service that was removed from the stack, or whose
 *   backups have been failing for a while, keeps its last good backup.
 *
 * Runs from the future
 *   A run that started after `now` is kept with reason "in the future: clock
 *   skew?". It is left out of the keep rules and of the safety net, so a
 *   skewed clock can neither push good runs out of a rule nor take the safety
 *   net's place.
 *
 * Incomplete runs (no manifest)
 *   Never kept by a rule. A run that started more than `incompleteGraceHours`
 *   (default 24) before `now` is deleted with reason "incomplete, older than
 *   grace period"; otherwise (exactly at the limit, or younger) it is kept with
 *   reason "incomplete, may still be running".
 *
 * Runs with an invalid start time
 *   Kept with reason "invalid start time: keep" and otherwise ignored; they are
 *   listed after all other runs, ordered by id (greater first).
 *
 * Evidence of a suspected data loss
 *   `suspect` names, per service, what a run's backup lost since the service's previous good run
 *   (fact-trends.ts), unless an operator accepted it. For each service, the newest complete run
 *   before its oldest suspect run that holds the service is kept, reason "last good run before
 *   suspected loss on shop.orders (...)": a suspect run never makes the copy from before the loss
 *   deletable. Once accepted, the next suspect run (if any) guards its own predecessor.
 *
 * requireVerified (option, default false; `retention.require_verified` in composure.yml, default true)
 *   A complete run that would be deleted is kept unless, for each of its services, a newer
 *   complete run lists the service in `verified` (its artifacts passed make verify). Reason:
 *   "no newer run of db has passed make verify yet (retention.require_verified)". The newest
 *   verified run of a service is therefore never deleted, so what is deleted always has a
 *   verified successor. With an empty policy every run is kept anyway.
 * Pinned runs
 *   A run with `pinned` set (make pin, or a tag of retention.pin_tags) is kept
 *   with reason "pinned", whatever the rules say; it still counts in the rules.
 *
 * Complete runs that nothing keeps are deleted with reason "not kept by any rule".
 *
 * Errors (thrown, nothing decided)
 *   - a policy that `retentionPolicySchema` rejects (a ZodError);
 *   - an invalid `now`, a negative or non-finite `incompleteGraceHours`, or a
 *     `timeZone` other than "UTC" (RangeError);
 *   - two runs with the same id (RangeError): a decision is addressed by id, so
 *     duplicates would make "delete this id" ambiguous.
 */
import { z } from "zod";

export interface RetentionPolicy {
  keep_last?: number;
  keep_hourly?: number;
  keep_daily?: number;
  keep_weekly?: number;
  keep_monthly?: number;
  keep_yearly?: number;
}

export interface RunFacts {
  id: string;
  startedAt: Date;
  /** The run has a manifest. */
  complete: boolean;
  /** Services with a successful artifact set in this run. */
  services: string[];
  /** Service -> what its backup in this run lost (e.g. ["shop.orders"]): suspected and not accepted. */
  suspect?: Record<string, string[]>;
  /** Services whose artifacts in this run passed make verify. */
  verified?: string[];
  /** Kept whatever the rules say (make pin, retention.pin_tags). */
  pinned?: boolean;
}

export interface RetentionDecision {
  id: string;
  keep: boolean;
  /** Why, e.g. ["daily 2026-11-21", "newest complete run of service db"]. */
  reasons: string[];
}

export interface RetentionOptions {
  /** Incomplete runs older than this are deleted. Default 24. */
  incompleteGraceHours?: number;
  /** Buckets are always computed in UTC; no other zone is supported. */
  timeZone?: "UTC";
  /** Delete a run only behind a newer verified run of each of its services. Default false. */
  requireVerified?: boolean;
}

const POLICY_KEYS = [
  "keep_last",
  "keep_hourly",
  "keep_daily",
  "keep_weekly",
  "keep_monthly",
  "keep_yearly",
] as const;

function count(key: (typeof POLICY_KEYS)[number]) {
  return z
    .number({ invalid_type_error: `${key} must be a number` })
    .int({ message: `${key} must be a whole number` })
    .nonnegative({ message: `${key} must be 0 or more` })
    .optional();
}

export const retentionPolicySchema: z.ZodType<RetentionPolicy> = z
  .object(
    {
      keep_last: count("keep_last"),
      keep_hourly: count("keep_hourly"),
      keep_daily: count("keep_daily"),
      keep_weekly: count("keep_weekly"),
      keep_monthly: count("keep_monthly"),
      keep_yearly: count("keep_yearly"),
    },
    {
      errorMap: (issue, ctx) => {
        if (issue.code === z.ZodIssueCode.unrecognized_keys) {
          const keys = issue.keys.map((k) => `"${k}"`).join(", ");
          return {
            message: `unknown retention setting${issue.keys.length === 1 ? "" : "s"} ${keys}; allowed: ${POLICY_KEYS.join(", ")}`,
          };
        }
        if (issue.code === z.ZodIssueCode.invalid_type && issue.path.length === 0) {
          return { message: `retention policy must be an object of ${POLICY_KEYS.join(", ")}` };
        }
        return { message: ctx.defaultError };
      },
    },
  )
  .strict();

export const REASON_NO_RULES = "no retention rules: keep all";
export const REASON_FUTURE = "in the future: clock skew?";
export const REASON_INCOMPLETE_RUNNING = "incomplete, may still be running";
export const REASON_INCOMPLETE_EXPIRED = "incomplete, older than grace period";
export const REASON_INVALID_TIME = "invalid start time: keep";
export const REASON_NOT_KEPT = "not kept by any rule";
export const REASON_PINNED = "pinned";

const MS_PER_HOUR = 3_600_000;
const MS_PER_DAY = 86_400_000;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

function mod(a: number, m: number): number {
  return ((a % m) + m) % m;
}

function utcDay(d: Date): string {
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** ISO 8601 week label, e.g. "2026-W53", for an instant, in UTC. */
function isoWeek(ms: number): string {
  const day = Math.floor(ms / MS_PER_DAY); // days since 1970-01-01
  const isoWeekday = mod(day + 3, 7) + 1; // 1 = Monday ... 7 = Sunday; 1970-01-01 was a Thursday
  const thursday = day + 4 - isoWeekday; // the week belongs to the year of its Thursday
  const weekYear = new Date(thursday * MS_PER_DAY).getUTCFullYear();
  const jan1 = new Date(0);
  jan1.setUTCFullYear(weekYear, 0, 1); // (Date.UTC would map years 0-99 to 19xx)
  const jan1Day = Math.floor(jan1.getTime() / MS_PER_DAY);
  const week = Math.floor((thursday - jan1Day) / 7) + 1;
  return `${pad(weekYear, 4)}-W${pad(week)}`;
}

type BucketRule = "keep_hourly" | "keep_daily" | "keep_weekly" | "keep_monthly" | "keep_yearly";

const BUCKET_RULES: ReadonlyArray<{ key: BucketRule; name: string; bucket: (ms: number) => string }> = [
  {
    key: "keep_hourly",
    name: "hourly",
    bucket: (ms) => {
      const d = new Date(ms);
      return `${utcDay(d)}T${pad(d.getUTCHours())}:00Z`;
    },
  },
  { key: "keep_daily", name: "daily", bucket: (ms) => utcDay(new Date(ms)) },
  { key: "keep_weekly", name: "weekly", bucket: isoWeek },
  {
    key: "keep_monthly",
    name: "monthly",
    bucket: (ms) => {
      const d = new Date(ms);
      return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}`;
    },
  },
  { key: "keep_yearly", name: "yearly", bucket: (ms) => pad(new Date(ms).getUTCFullYear(), 4) },
];

interface Entry {
  run: RunFacts;
  /** Milliseconds since the epoch, or NaN when the start time is invalid. */
  ms: number;
  reasons: string[];
  keep: boolean;
}

function compareIdsDescending(a: string, b: string): number {
  return a < b ? 1 : a > b ? -1 : 0;
}

/** Newest first; equal instants by id, greater first; invalid start times last. */
function compareNewestFirst(a: Entry, b: Entry): number {
  const aValid = !Number.isNaN(a.ms);
  const bValid = !Number.isNaN(b.ms);
  if (aValid !== bValid) return aValid ? -1 : 1;
  if (aValid && a.ms !== b.ms) return b.ms - a.ms;
  return compareIdsDescending(a.run.id, b.run.id);
}

function startMillis(run: RunFacts): number {
  return run.startedAt instanceof Date ? run.startedAt.getTime() : Number.NaN;
}

export function decideRetention(
  runs: RunFacts[],
  policy: RetentionPolicy,
  now: Date,
  options: RetentionOptions = {},
): RetentionDecision[] {
  const counts = retentionPolicySchema.parse(policy);

  const nowMs = now instanceof Date ? now.getTime() : Number.NaN;
  if (Number.isNaN(nowMs)) throw new RangeError("decideRetention: now is not a valid date");

  const graceHours = options.incompleteGraceHours ?? 24;
  if (typeof graceHours !== "number" || !Number.isFinite(graceHours) || graceHours < 0) {
    throw new RangeError(
      `decideRetention: incompleteGraceHours must be a finite number of hours, 0 or more (got ${String(graceHours)})`,
    );
  }
  const timeZone = options.timeZone ?? "UTC";
  if (timeZone !== "UTC") {
    throw new RangeError(`decideRetention: only the UTC time zone is supported (got ${String(timeZone)})`);
  }

  const seen = new Set<string>();
  for (const run of runs) {
    if (seen.has(run.id)) throw new RangeError(`decideRetention: duplicate run id "${run.id}"`);
    seen.add(run.id);
  }

  const entries: Entry[] = runs.map((run) => ({ run, ms: startMillis(run), reasons: [], keep: false }));
  entries.sort(compareNewestFirst);

  const emptyPolicy = POLICY_KEYS.every((key) => (counts[key] ?? 0) === 0);
  if (emptyPolicy) {
    return entries.map((e) => ({ id: e.run.id, keep: true, reasons: [REASON_NO_RULES] }));
  }

  const keepBy = (e: Entry, reason: string) => {
    e.keep = true;
    e.reasons.push(reason);
  };

  // Runs the rules and the safety net look at, newest first.
  const eligible: Entry[] = [];
  for (const e of entries) {
    if (Number.isNaN(e.ms)) {
      keepBy(e, REASON_INVALID_TIME);
      continue;
    }
    if (e.ms > nowMs) keepBy(e, REASON_FUTURE);
    else if (e.run.complete) eligible.push(e);
  }

  const keepLast = counts.keep_last ?? 0;
  for (let i = 0; i < Math.min(keepLast, eligible.length); i++) {
    keepBy(eligible[i]!, `last ${i + 1} of ${keepLast}`);
  }

  for (const rule of BUCKET_RULES) {
    const limit = counts[rule.key] ?? 0;
    if (limit === 0) continue;
    let used = 0;
    let previous: string | undefined;
    for (const e of eligible) {
      if (used >= limit) break;
      const bucket = rule.bucket(e.ms);
      // Eligible runs are sorted, so each bucket's runs are adjacent and the
      // first one met is the newest of its bucket.
      if (bucket === previous) continue;
      previous = bucket;
      used++;
      keepBy(e, `${rule.name} ${bucket}`);
    }
  }

  const covered = new Set<string>();
  for (const e of eligible) {
    const services = [...new Set(e.run.services)].sort(); // code-unit order, locale-independent
    for (const service of services) {
      if (covered.has(service)) continue;
      covered.add(service);
      keepBy(e, `newest complete run of service ${service}`);
    }
  }

  for (const e of entries) if (e.run.pinned) keepBy(e, REASON_PINNED);
  keepEvidence(eligible, keepBy);
  if (options.requireVerified) keepUntilVerifiedSuccessor(eligible, keepBy);

  for (const e of entries) {
    if (e.run.complete || Number.isNaN(e.ms)) continue;
    if (nowMs - e.ms > graceHours * MS_PER_HOUR) {
      e.reasons.push(REASON_INCOMPLETE_EXPIRED);
    } else {
      keepBy(e, REASON_INCOMPLETE_RUNNING);
    }
  }

  for (const e of entries) {
    if (e.reasons.length === 0) e.reasons.push(REASON_NOT_KEPT);
  }

  return entries.map((e) => ({ id: e.run.id, keep: e.keep, reasons: e.reasons }));
}

type KeepBy = (e: Entry, reason: string) => void;

/** For each service, the newest run before its oldest suspect run that holds it (eligible: newest first). */
function keepEvidence(eligible: Entry[], keepBy: KeepBy): void {
  const isSuspectOf = (e: Entry, service: string) => (e.run.suspect?.[service]?.length ?? 0) > 0;
  const services = [...new Set(eligible.flatMap((e) => Object.keys(e.run.suspect ?? {}).filter((service) => isSuspectOf(e, service))))].sort();
  for (const service of services) {
    let oldestSuspect = eligible.length - 1;
    while (!isSuspectOf(eligible[oldestSuspect]!, service)) oldestSuspect--;
    const suspect = eligible[oldestSuspect]!;
    const before = eligible.slice(oldestSuspect + 1).find((e) => e.run.services.includes(service));
    if (!before) continue;
    const lost = suspect.run.suspect![service]!.join(", ");
    keepBy(before, `last good run before suspected loss on ${lost} (service ${service} in run ${suspect.run.id}; 'make accept RUN=${suspect.run.id}' lets it go)`);
  }
}

/** Keeps each run not kept yet that has a service without a newer verified run (eligible: newest first). */
function keepUntilVerifiedSuccessor(eligible: Entry[], keepBy: KeepBy): void {
  const verifiedNewer = new Set<string>();
  for (const e of eligible) {
    const unverified = [...new Set(e.run.services)].filter((service) => !verifiedNewer.has(service)).sort();
    if (!e.keep && unverified.length > 0) keepBy(e, `no newer run of ${unverified.join(", ")} has passed make verify yet (retention.require_verified)`);
    for (const service of e.run.verified ?? []) verifiedNewer.add(service);
  }
}
