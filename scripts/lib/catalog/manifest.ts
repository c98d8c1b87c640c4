// manifest.json seals a run: written LAST, by atomic rename. A run directory without one is
// incomplete (interrupted or still running) and is ignored by list, verify, restore and retention.
import { existsSync } from "node:fs";
import { open, readFile, rename } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { UsageError } from "../errors.ts";

export const manifestFormat = "composure/1";
export const manifestFile = "manifest.json";

/**
 * Names in a manifest (run, project, services, artifact paths, volumes, databases) reach paths,
 * docker calls and log lines at restore time. Control characters, or text that was not UTF-8
 * (decoded to U+FFFD, or a lone surrogate from a "\ud800" escape), mean the file was damaged or
 * forged: it is refused. File names inside the archives are not checked: they are the user's
 * own (any POSIX name is legal) and restore as they are.
 */
export function nameProblem(value: string): string | undefined {
  const control = /[\u0000-\u001f\u007f]/.exec(value)?.[0];
  if (control) return `contains the control character U+${control.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
  if (value.includes("\ufffd")) return "is not valid UTF-8 (it holds U+FFFD, the replacement character)";
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value)) return "is not valid UTF-8 (it holds a lone surrogate)";
  return undefined;
}

function checkName(value: string, ctx: z.RefinementCtx, at: string[] = []): void {
  const problem = nameProblem(value);
  if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, path: at, message: `${JSON.stringify(value)} ${problem} (names in a manifest must be printable UTF-8)` });
}

const safeName = z.string().superRefine((value, ctx) => checkName(value, ctx));
/** Artifact facts: `database` names the database (or database file) a restore acts on. */
const artifactFacts = z.record(z.unknown()).superRefine((facts, ctx) => {
  if (typeof facts.database === "string") checkName(facts.database, ctx, ["database"]);
});

const volumeFacts = z.object({
  /** Docker's name of the volume, e.g. shop_data, or the host path of a bind mount. */
  name: safeName,
  kind: z.enum(["volume", "bind"]),
  /** The name in the compose file (com.docker.compose.volume), used for archive names. */
  composeName: safeName.optional(),
  driver: z.string().optional(),
  labels: z.record(z.string()).optional(),
  external: z.boolean().optional(),
  /** Other services that mount the same volume (it is backed up once). */
  sharedWith: z.array(safeName).optional(),
  /** Where the service's container mounted it: restores into another project find its volume there. */
  destination: z.string().optional(),
});

/** Where an artifact of the repository engine is: a restic snapshot of the project's repository. */
const repositoryEntry = z.object({
  snapshot: z.string().regex(/^[0-9a-f]{64}$/),
  /** The source's path in the snapshot: a directory as the helper saw it, or the stream's file. */
  source: z.string().min(1),
  kind: z.enum(["tree", "stream"]),
  files: z.number().int().nonnegative(),
  /** Bytes this artifact added to the repository (after deduplication and compression). */
  addedBytes: z.number().int().nonnegative(),
});

export const artifactSchema = z
  .object({
    /** Archive engine: the file, relative to the run directory. Repository engine: <service>/<name>, a name only. */
    path: safeName,
    /** Archive engine: the file's size. Repository engine: the source's size. */
    bytes: z.number().int().nonnegative(),
    /** Archive engine only (restic checks its own content by hash). */
    sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
    compression: z.enum(["zstd", "gzip"]).optional(),
    /** "age": the stored bytes are an age file (decrypt with the identity, then decompress). */
    encryption: z.enum(["none", "age"]).optional(),
    /** Repository engine only. */
    repository: repositoryEntry.optional(),
    volume: volumeFacts.optional(),
    /** What the archive held when it was written: for verify and restore drills. */
    facts: artifactFacts.optional(),
  })
  .refine((artifact) => artifact.repository !== undefined || (artifact.sha256 !== undefined && artifact.compression !== undefined), {
    message: "an archive artifact needs sha256 and compression (a repository artifact needs repository)",
  });

/**
 * A count that fell by more than the service's shrink_alert share since its previous good run, or
 * a thing that held data and is gone (`now` absent). Names come from the data: shown, never used as paths.
 */
export const lossSchema = z.object({
  what: z.string(),
  /** table, index, keyspace, database, Redis database: set when the thing itself is gone. */
  kind: z.string().optional(),
  unit: z.string().optional(),
  was: z.number().nonnegative().optional(),
  now: z.number().nonnegative().optional(),
});
/** What `make backup` adds to a run's manifest: tags (TAG=) and a note (NOTE=). */
export interface RunLabels {
  tags?: string[];
  note?: string;
}

/** A run's tag (make backup TAG=): a plain word, so that it is safe in file names, labels and TAG= lists. */
export const tagSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "a tag is a word of letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)");

/** A run's note (make backup NOTE=): one printable line. */
export const noteSchema = z.string().max(500, "a note holds at most 500 characters").superRefine((value, ctx) => checkName(value, ctx));

export const serviceRecordSchema = z.object({
  name: safeName,
  strategy: z.string(),
  /** critical | medium | low at backup time: retention may keep tiers differently. */
  tier: z.enum(["critical", "medium", "low"]).optional(),
  status: z.enum(["ok", "failed"]),
  error: z.string().optional(),
  image: z.string().optional(),
  stopped: z.array(safeName).default([]),
  downtimeSeconds: z.number().nonnegative(),
  durationSeconds: z.number().nonnegative(),
  artifacts: z.array(artifactSchema),
  /** Facts about the service's backup as a whole, e.g. `capturedWith` for a node group of a cluster captured by another service. */
  facts: z.record(z.unknown()).optional(),
  /** The facts compared with the service's previous good run (catalog/fact-trends.ts). */
  trend: z.object({ baseline: safeName, largestDrop: z.number().min(0).max(1) }).optional(),
  /** Suspected data loss since that run: the backup is good, the data it holds may not be. */
  suspect: z.array(lossSchema).optional(),
});

export const manifestSchema = z.object({
  format: z.literal(manifestFormat),
  project: safeName,
  runId: safeName,
  host: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  outcome: z.enum(["success", "partial", "failed"]),
  /** Why the run was taken, e.g. "rescue before restoring run X". */
  reason: z.string().optional(),
  /** make backup TAG=: words to find the run by (make list TAG=) and to pin it (retention.pin_tags). Absent in older manifests. */
  tags: z.array(tagSchema).optional(),
  /** make backup NOTE=: why the run was taken, in the operator's words. */
  note: noteSchema.optional(),
  services: z.array(serviceRecordSchema),
});

export type Artifact = z.infer<typeof artifactSchema>;
export type Loss = z.infer<typeof lossSchema>;
export type ServiceRecord = z.infer<typeof serviceRecordSchema>;
export type Manifest = z.infer<typeof manifestSchema>;

/** The artifacts of a run, every service's. */
export const artifactsOf = (manifest: Manifest): Artifact[] => manifest.services.flatMap((service) => service.artifacts);

/** True when some artifact of the run is a snapshot of the project's restic repository. */
export const usesRepository = (manifest: Manifest): boolean => artifactsOf(manifest).some((artifact) => artifact.repository);

export class ManifestError extends Error {
  name = "ManifestError";
}

export async function writeManifest(runDir: string, manifest: Manifest): Promise<void> {
  await writeFileAtomically(path.join(runDir, manifestFile), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Writes `file` (0600) whole or not at all: a temporary file, synced, renamed over it. */
export async function writeFileAtomically(file: string, text: string): Promise<void> {
  const temporary = `${file}.tmp`;
  const handle = await open(temporary, "w", 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
}

/** NOTE=: one printable line, or undefined when empty. */
export function parseNote(value: string | undefined): string | undefined {
  const note = value?.trim();
  if (!note) return undefined;
  const checked = noteSchema.safeParse(note);
  if (!checked.success) throw new UsageError(`NOTE: ${checked.error.issues[0].message}`);
  return note;
}

/** TAG=pre-upgrade,v2 -> ["pre-upgrade", "v2"], each checked; `variable` names the setting in the message. */
export function parseTagList(value: string | undefined, variable = "TAG"): string[] {
  const tags = [...new Set((value ?? "").split(",").map((tag) => tag.trim()).filter(Boolean))];
  const bad = tags.filter((tag) => !tagSchema.safeParse(tag).success);
  if (bad.length) throw new UsageError(`${variable}=${value}: ${bad.map((tag) => JSON.stringify(tag)).join(", ")} ${bad.length > 1 ? "are not tags" : "is not a tag"}: ${tagSchema.safeParse(bad[0]).error?.issues[0].message}; separate several with commas`);
  return tags;
}

/** Reads and validates a run's manifest; every failure names the run and what is wrong. */
export async function readManifest(runDir: string, expectedProject?: string): Promise<Manifest> {
  const file = path.join(runDir, manifestFile);
  if (!existsSync(file)) {
    throw new ManifestError(`run ${path.basename(runDir)} has no ${manifestFile}: it is incomplete (interrupted or still running)`);
  }
  let document: unknown;
  try {
    document = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new ManifestError(`${file} is not valid JSON (${(error as Error).message}): the run cannot be trusted`);
  }
  const parsed = manifestSchema.safeParse(document);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(top)"}: ${issue.message}`).join("; ");
    throw new ManifestError(`${file} is not a composure manifest: ${problems}`);
  }
  if (expectedProject && parsed.data.project !== expectedProject) {
    throw new ManifestError(`${file} belongs to project ${parsed.data.project}, not ${expectedProject}`);
  }
  if (parsed.data.runId !== path.basename(runDir)) {
    throw new ManifestError(`${file} names run ${parsed.data.runId} but lies in ${path.basename(runDir)}`);
  }
  for (const service of parsed.data.services) {
    for (const artifact of service.artifacts) assertInsideRun(artifact.path, file);
  }
  return parsed.data;
}

/** Artifact paths come from a file an attacker may have edited: keep them inside the run. */
function assertInsideRun(relative: string, file: string): void {
  const normalised = path.posix.normalize(relative);
  if (path.posix.isAbsolute(relative) || normalised.startsWith("../") || normalised === "..") {
    throw new ManifestError(`${file} lists an artifact outside its run directory: ${JSON.stringify(relative)}`);
  }
}
