// make verify: the manifest is present and well-formed, and every archive artifact has its
// recorded size and sha256, decompresses and lists to the end as a safe tar archive (one read per
// artifact). Runs with repository artifacts: `restic check` of the repository once (DEEP=1 also
// reads back a share of its data), and every referenced snapshot is there with its recorded size.
import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { canDecrypt, hashFile, readDecompressed } from "../archive/files.ts";
import { createTarInspector } from "../archive/tar-inspector.ts";
import { readManifest, type Artifact, type Manifest } from "../catalog/manifest.ts";
import { recordVerified } from "../catalog/run-marks.ts";
import { isRescueRun, listRunDirs, projectDir, type RunEntry } from "../catalog/runs.ts";
import { UsageError, messageOf } from "../errors.ts";
import type { Config } from "../config/schema.ts";
import { requireRepository } from "../store/read.ts";
import { checkRepository, projectSnapshots } from "../store/repository.ts";
import { repositoryOf } from "../store/restic.ts";

export interface VerifyFinding {
  run: string;
  artifact?: string;
  /** The service the artifact belongs to (for the per-service verify metrics). */
  service?: string;
  ok: boolean;
  message: string;
}

export async function verifyRuns(config: Config, project: string, selector: string, deep = false): Promise<VerifyFinding[]> {
  const runs = await listRunDirs(config.destination, project);
  const chosen = chooseRuns(runs, selector, project, config.destination);
  const repository = repositoryChecks(config, project, deep);
  const findings: VerifyFinding[] = [];
  for (const run of chosen) findings.push(...(await verifyRun(run, project, repository)));
  return [...(await repository.findings()), ...findings];
}

/**
 * The repository, checked once and only when a run refers to it: `restic check` (with DEEP=1,
 * --read-data-subset of the configured share) and the list of this project's snapshots.
 */
function repositoryChecks(config: Config, project: string, deep: boolean) {
  const repository = repositoryOf(config, project);
  let checked: Promise<{ snapshots: Map<string, { bytes: number }>; finding: VerifyFinding }> | undefined;
  const check = () =>
    (checked ??= (async () => {
      const share = deep ? config.repository.verify_read_share : undefined;
      const where = { run: "repository" };
      try {
        await requireRepository(repository);
        await checkRepository(repository, share);
        return { snapshots: await projectSnapshots(repository), finding: { ...where, ok: true, message: `restic check of ${repository.path} passed${share ? ` (read back ${share} of the data)` : ""}` } };
      } catch (error) {
        return { snapshots: new Map(), finding: { ...where, ok: false, message: messageOf(error) } };
      }
    })());
  return {
    /** Undefined when the artifact's snapshot is there with its recorded size, else what is wrong. */
    async problemOf(artifact: Artifact): Promise<string | undefined> {
      const { snapshots, finding } = await check();
      if (!finding.ok) return `the repository cannot be checked: ${finding.message}`;
      const snapshot = snapshots.get(artifact.repository!.snapshot);
      if (!snapshot) return `missing: snapshot ${artifact.repository!.snapshot.slice(0, 8)} is not in the repository ${repository.path}`;
      if (snapshot.bytes !== artifact.bytes) return `wrong size: the snapshot holds ${snapshot.bytes} bytes, the manifest says ${artifact.bytes}`;
      return undefined;
    },
    findings: async (): Promise<VerifyFinding[]> => (checked ? [(await checked).finding] : []),
  };
}

function chooseRuns(runs: RunEntry[], selector: string, project: string, destination: string): RunEntry[] {
  if (selector === "all") return runs;
  if (selector === "latest") {
    const latest = runs.find((run) => run.complete && !isRescueRun(run.id));
    if (!latest) throw new UsageError(`no complete run of project ${project} in ${projectDir(destination, project)}`);
    return [latest];
  }
  const run = runs.find((entry) => entry.id === selector);
  if (!run) throw new UsageError(`run ${selector} of project ${project} not found (see 'make list')`);
  return [run];
}

async function verifyRun(run: RunEntry, project: string, repository: ReturnType<typeof repositoryChecks>): Promise<VerifyFinding[]> {
  let manifest;
  try {
    manifest = await readManifest(run.dir, project);
  } catch (error) {
    return [{ run: run.id, ok: false, message: messageOf(error) }];
  }
  const findings: VerifyFinding[] = [];
  for (const service of manifest.services) {
    for (const artifact of service.artifacts) {
      const problem = artifact.repository ? await repository.problemOf(artifact) : await checkArtifact(run.dir, artifact);
      findings.push({ run: run.id, artifact: artifact.path, service: service.name, ok: !problem, message: problem ?? "ok" });
    }
  }
  if (findings.length === 0) findings.push({ run: run.id, ok: manifest.outcome !== "failed", message: `no artifacts (outcome ${manifest.outcome})` });
  await recordVerified(run.dir, verifiedServices(manifest, findings));
  return findings;
}

/**
 * Per good service of the run: all its artifacts passed. A cluster member whose data another
 * service captured passes with its capturer (retention.require_verified reads this).
 */
function verifiedServices(manifest: Manifest, findings: VerifyFinding[]): Record<string, boolean> {
  const passed = (service: string) => findings.every((finding) => finding.service !== service || finding.ok);
  const good = manifest.services.filter((service) => service.status === "ok");
  return Object.fromEntries(good.map((service) => [service.name, passed(typeof service.facts?.capturedWith === "string" ? service.facts.capturedWith : service.name)]));
}

/** Returns undefined when the artifact is good, else what is wrong with it. */
export async function checkArtifact(runDir: string, artifact: Artifact): Promise<string | undefined> {
  const file = path.join(runDir, artifact.path);
  if (!existsSync(file)) return "missing: the archive file is gone";
  const size = (await stat(file)).size;
  if (size < artifact.bytes) return `truncated: ${size} of ${artifact.bytes} bytes`;
  if (size > artifact.bytes) return `wrong size: ${size} bytes, the manifest says ${artifact.bytes}`;
  const stored = await hashFile(file);
  if (stored.sha256 !== artifact.sha256) return "checksum mismatch: the content differs from what was backed up (corrupted or altered)";
  if (artifact.encryption === "age" && !canDecrypt()) return undefined; // size and sha256 checked; the content needs the identity
  try {
    const source = readDecompressed(file, undefined, artifact);
    // Tar archives (volumes) are listed to the end; other artifacts (database dumps) are decompressed to the end.
    const isTar = artifact.volume !== undefined || /\.tar(\.zst|\.gz)?(\.age)?$/.test(artifact.path);
    const listing = isTar ? pipeline(source.stream, createTarInspector(), new PassThrough().resume()) : pipeline(source.stream, new PassThrough().resume());
    const [decompressed, listed] = await Promise.allSettled([source.done, listing]);
    if (decompressed.status === "rejected") return `cannot decompress: ${messageOf(decompressed.reason)}`;
    if (listed.status === "rejected") return `unreadable archive: ${messageOf(listed.reason)}`;
    return undefined;
  } catch (error) {
    return `unreadable archive: ${messageOf(error)}`;
  }
}
