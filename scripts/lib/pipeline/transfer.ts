// make export / make import: one run carried to another host as one self-checking tar file
// (archive/export-file.ts). The file holds one folder, composure-export/:
//   export.json   what it is: format, project, run, where and when it was exported
//   SHA256SUMS    the sha256 of every other file
//   repository/   for a run with repository artifacts: a restic repository holding only the
//                 snapshots the run references, made with the project repository's chunker
//                 parameters and opened with its password file (which is never in the export)
//   <run id>/     the run's folder, its manifest the tar's last entry. Pins, verify results and
//                 the upload state describe this host's copy of the run: they stay here.
// restic gives a copied snapshot a new id: the exported manifest names the snapshots' ids in
// repository/, the imported one their ids in the local repository; no other byte of it changes.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { checksumListFile, packFolder, unpackFolder, type Checksums } from "../archive/export-file.ts";
import { artifactsOf, ManifestError, manifestFile, readManifest, usesRepository, writeFileAtomically, type Manifest } from "../catalog/manifest.ts";
import { pinFile } from "../catalog/pins.ts";
import { verifiedFile } from "../catalog/run-marks.ts";
import { findRun, projectDir } from "../catalog/runs.ts";
import { uploadStateFile } from "../catalog/upload-state.ts";
import type { Config } from "../config/schema.ts";
import { UsageError, messageOf } from "../errors.ts";
import { formatBytes, log } from "../log.ts";
import { requireRepository } from "../store/read.ts";
import { checkRepository, copySnapshots } from "../store/repository.ts";
import { checkVersion, repositoryOf, type Repository } from "../store/restic.ts";
import { acquireLock } from "./lock.ts";

const exportFolder = "composure-export";
const descriptorFile = "export.json";
const repositoryFolder = "repository";
const exportFormat = "composure-export/1";
const hostOnlyFiles = new Set([pinFile, verifiedFile, uploadStateFile]);

const descriptorSchema = z.object({ format: z.literal(exportFormat), project: z.string(), run: z.string(), host: z.string(), exportedAt: z.string() });

export interface Exported {
  file: string;
  bytes: number;
  runId: string;
  snapshots: number;
}

/** Writes run `selector` of `project` into the new tar file `file`. */
export async function exportRun(config: Config, project: string, selector: string, file: string): Promise<Exported> {
  const target = path.resolve(file);
  if (existsSync(target)) throw new UsageError(`${target} exists: name a new file with FILE=, or remove that one first`);
  if (!existsSync(path.dirname(target))) throw new UsageError(`the folder ${path.dirname(target)} of FILE=${file} does not exist`);
  // Under the project lock: a prune meanwhile could delete the run or its snapshots.
  const unlock = await acquireLock(projectDir(config.destination, project), "export", config.lock.timeout_seconds);
  let staging: string | undefined;
  try {
    // Beside the target: the copy of the snapshots needs room where the operator chose to put the export.
    staging = await mkdtemp(path.join(path.dirname(target), `.${path.basename(target)}-`));
    const { manifest, dir } = await completeRun(config.destination, project, selector);
    const repository = usesRepository(manifest) ? repositoryOf(config, project) : undefined;
    const ids = await stageExport(staging, manifest, dir, repository);
    log.info(`writing run ${manifest.runId} of project ${project} to ${target}`);
    const damaged = (sums: Checksums) => refuseIf(artifactProblems(manifest, sums), `run ${manifest.runId} is damaged in ${dir}, so it is not exported (make verify RUN=${manifest.runId} says more)`);
    const sums = await packFolder(staging, exportFolder, target, { first: [descriptorFile], last: [path.join(manifest.runId, manifestFile)], check: damaged });
    const bytes = (await stat(target)).size;
    log.info(`exported run ${manifest.runId} of project ${project}: ${target} (${formatBytes(bytes)}, ${sums.size} files checked by its ${checksumListFile}${ids.size ? `, ${ids.size} snapshot(s) in its restic repository` : ""})`);
    if (repository) log.warn(`the snapshots in ${target} open with the repository password file ${repository.passwordFile}, which is NOT in the export: the importing host needs a copy of that file as its repository password file (repository.password_file; by default <destination>/.repository-password)`);
    return { file: target, bytes, runId: manifest.runId, snapshots: ids.size };
  } finally {
    if (staging) await rm(staging, { recursive: true, force: true });
    await unlock();
  }
}

/** The export's folder in `staging`: the snapshots' repository, the run's folder, export.json. Returns the snapshots' ids in the export. */
async function stageExport(staging: string, manifest: Manifest, runDir: string, repository: Repository | undefined): Promise<Map<string, string>> {
  const root = path.join(staging, exportFolder);
  await mkdir(root, { mode: 0o700 });
  const ids = repository ? await exportSnapshots(repository, manifest, root, staging) : new Map<string, string>();
  await stageRun(runDir, ids, path.join(root, manifest.runId));
  const descriptor: z.infer<typeof descriptorSchema> = { format: exportFormat, project: manifest.project, run: manifest.runId, host: os.hostname(), exportedAt: new Date().toISOString() };
  await writeFile(path.join(root, descriptorFile), `${JSON.stringify(descriptor, null, 2)}\n`, { mode: 0o600 });
  return ids;
}

async function completeRun(destination: string, project: string, selector: string): Promise<{ manifest: Manifest; dir: string }> {
  try {
    return await findRun(destination, project, selector);
  } catch (error) {
    if (error instanceof ManifestError) throw new UsageError(`run ${selector} of project ${project} cannot be exported: ${error.message}. Only a complete run can be exported`);
    throw error;
  }
}

/** The run's snapshots copied into repository/ of the export; returns each snapshot's id there. */
async function exportSnapshots(repository: Repository, manifest: Manifest, root: string, staging: string): Promise<Map<string, string>> {
  await requireRepository(repository);
  const ids = snapshotIdsOf(manifest);
  log.info(`copying the ${ids.length} snapshot(s) of run ${manifest.runId} from ${repository.path} into the export's restic repository`);
  return copySnapshots(repository, { ...repository, path: path.join(root, repositoryFolder), cacheDir: path.join(staging, "restic-cache") }, ids);
}

/** The run's folder as links to its files (tar reads through them), the manifest a file of its own with `ids` applied. */
async function stageRun(runDir: string, ids: Map<string, string>, staged: string): Promise<void> {
  const entries = await readdir(runDir, { recursive: true, withFileTypes: true });
  await mkdir(staged, { mode: 0o700 });
  for (const entry of entries) {
    const relative = path.relative(runDir, path.join(entry.parentPath, entry.name));
    if (entry.isDirectory()) await mkdir(path.join(staged, relative), { recursive: true, mode: 0o700 });
    else if (relative !== manifestFile && !hostOnlyFiles.has(relative) && !/\.(partial|tmp)$/.test(entry.name)) {
      await mkdir(path.dirname(path.join(staged, relative)), { recursive: true, mode: 0o700 });
      await symlink(path.join(runDir, relative), path.join(staged, relative));
    }
  }
  await writeFile(path.join(staged, manifestFile), withSnapshotIds(await readFile(path.join(runDir, manifestFile), "utf8"), ids), { mode: 0o600 });
}

/** The manifest's text with its snapshot ids replaced: no re-serialisation, every other byte stays as the backup wrote it. */
function withSnapshotIds(text: string, ids: Map<string, string>): string {
  let result = text;
  for (const [from, to] of ids) result = result.replaceAll(`"${from}"`, `"${to}"`);
  return result;
}

const snapshotIdsOf = (manifest: Manifest) => [...new Set(artifactsOf(manifest).flatMap((artifact) => (artifact.repository ? [artifact.repository.snapshot] : [])))];

/** The run's archive files against the manifest (size and sha256); repository artifacts are restic's to check. */
function artifactProblems(manifest: Manifest, sums: Checksums): string[] {
  return artifactsOf(manifest)
    .filter((artifact) => !artifact.repository)
    .flatMap((artifact) => {
      const stored = sums.get(path.posix.join(manifest.runId, artifact.path));
      if (!stored) return [`${artifact.path} is missing`];
      if (stored.bytes !== artifact.bytes || stored.sha256 !== artifact.sha256) return [`${artifact.path} does not match its size and sha256 in the manifest`];
      return [];
    });
}

function refuseIf(problems: string[], what: string): void {
  if (problems.length) throw new Error(`${what}: ${problems.join("; ")}`);
}

export interface Imported {
  project: string;
  runId: string;
  dir: string;
  snapshots: number;
}

/**
 * Adds the run in the export file `file` to the destination's catalog, after checking every byte
 * of it (and, for a repository run, `restic check` of its repository). `project`: PROJECT=, which
 * must then be the run's. A run that is already here is refused.
 */
export async function importRun(config: Config, file: string, project?: string): Promise<Imported> {
  const source = path.resolve(file);
  if (!existsSync(source)) throw new UsageError(`${source} does not exist: FILE= names a file make export wrote`);
  await mkdir(config.destination, { recursive: true, mode: 0o700 });
  // In the destination: the checked run folder joins the catalog by a rename on the same filesystem.
  const work = await mkdtemp(path.join(config.destination, ".import-"));
  try {
    const { manifest, runFolder } = await checkExport(source, work);
    if (project && project !== manifest.project) throw new UsageError(`${source} holds run ${manifest.runId} of project ${manifest.project}, not of PROJECT=${project}: import it without PROJECT= (make restore INTO=${project} restores it into that project)`);
    const unlock = await acquireLock(projectDir(config.destination, manifest.project), "import", config.lock.timeout_seconds);
    try {
      const runDir = path.join(projectDir(config.destination, manifest.project), manifest.runId);
      refuseExisting(runDir, manifest);
      const ids = usesRepository(manifest) ? await importSnapshots(config, manifest, source, path.dirname(runFolder), work) : new Map<string, string>();
      await placeRun(runFolder, runDir, ids);
      await readManifest(runDir, manifest.project);
      log.info(`imported run ${manifest.runId} of project ${manifest.project} into ${runDir}${ids.size ? ` (${ids.size} snapshot(s) copied into ${repositoryOf(config, manifest.project).path})` : ""}: every file matched its checksum`);
      return { project: manifest.project, runId: manifest.runId, dir: runDir, snapshots: ids.size };
    } finally {
      await unlock();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Extracts the export into `work` and checks every file; any failure names the file and what failed. */
async function checkExport(source: string, work: string): Promise<{ manifest: Manifest; runFolder: string }> {
  try {
    const { folder, sums } = await unpackFolder(source, work, exportFolder);
    const descriptor = descriptorSchema.parse(JSON.parse(await readFile(path.join(folder, descriptorFile), "utf8")));
    const runFolder = path.join(folder, descriptor.run);
    const manifest = await readManifest(runFolder, descriptor.project);
    refuseIf(artifactProblems(manifest, sums), "its archive files differ from the manifest");
    return { manifest, runFolder };
  } catch (error) {
    throw new Error(`${source} is damaged or was altered (or make export did not write it), refused: ${messageOf(error)}. Nothing was imported`);
  }
}

function refuseExisting(runDir: string, manifest: Manifest): void {
  if (!existsSync(runDir)) return;
  if (existsSync(path.join(runDir, manifestFile))) throw new UsageError(`run ${manifest.runId} of project ${manifest.project} is already here (${runDir}): nothing was imported. To replace it, remove that folder first`);
  throw new UsageError(`an incomplete run folder ${runDir} (an interrupted backup or import) is where run ${manifest.runId} would go: remove it, then import again`);
}

/** `restic check` of the export's repository, then its snapshots copied into the project's repository. */
async function importSnapshots(config: Config, manifest: Manifest, source: string, folder: string, work: string): Promise<Map<string, string>> {
  const local = repositoryOf(config, manifest.project);
  await checkVersion(local.binary);
  if (!existsSync(local.passwordFile)) {
    throw new UsageError(`run ${manifest.runId} keeps its data in the restic repository inside ${source}, which opens with the password file of the repository it was exported from: copy that file to ${local.passwordFile} (mode 0600; repository.password_file in composure.yml names another place), then import again. Nothing was imported`);
  }
  const exported: Repository = { ...local, path: path.join(folder, repositoryFolder), cacheDir: path.join(work, "restic-cache") };
  await checkRepository(exported).catch((error: unknown) => {
    throw new Error(`the restic repository inside ${source} failed restic check (${messageOf(error)}): nothing was imported`);
  });
  log.info(`restic check of the export's repository passed; copying its ${snapshotIdsOf(manifest).length} snapshot(s) into ${local.path}`);
  return copySnapshots(exported, local, snapshotIdsOf(manifest));
}

/** The run folder joins the catalog without its manifest, which goes in last (until then the run is incomplete and ignored). */
async function placeRun(runFolder: string, runDir: string, ids: Map<string, string>): Promise<void> {
  const manifest = await readFile(path.join(runFolder, manifestFile), "utf8");
  await rm(path.join(runFolder, manifestFile));
  await rename(runFolder, runDir);
  await writeFileAtomically(path.join(runDir, manifestFile), withSnapshotIds(manifest, ids));
}
