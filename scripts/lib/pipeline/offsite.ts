// Off-site copies: a sealed run is uploaded artifacts first and manifest last (so a partial
// upload is an incomplete run on the remote too), then sizes (and hashes) are checked. The
// outcome is kept beside the run in upload.json; `make sync` uploads what is missing. Local
// pruning never deletes remote copies: nothing here mirrors deletions.
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { manifestFile, manifestSchema, readManifest, usesRepository, type Manifest } from "../catalog/manifest.ts";
import { isRescueRun, listRunDirs, projectDir } from "../catalog/runs.ts";
import { acceptedFile, readAccepted, verifiedFile } from "../catalog/run-marks.ts";
import { uploadStateFile, writeUploadState } from "../catalog/upload-state.ts";
import { pinFile } from "../catalog/pins.ts";
import type { Config } from "../config/schema.ts";
import { RemoteError, UsageError, messageOf } from "../errors.ts";
import { log } from "../log.ts";
import { RcloneRemote } from "../remote/rclone.ts";
import type { Remote } from "../remote/types.ts";
import { repositoryOf, type Repository } from "../store/restic.ts";

/**
 * The remote with the backup host's credentials (remote.config_file), or with `prune` those of
 * remote.prune_config_file when set: only `make prune FROM=remote` deletes on the remote.
 */
export function remoteFrom(config: Config, options: { prune?: boolean } = {}): Remote | undefined {
  if (!config.remote) return undefined;
  const { target, config_file, prune_config_file, bwlimit, transfers, chunk_size } = config.remote;
  const pruneCredentials = Boolean(options.prune && prune_config_file);
  const configFile = pruneCredentials ? prune_config_file : config_file;
  return new RcloneRemote({ target, configFile, pruneCredentials, bwlimit, transfers, chunkSize: chunk_size, backoffSeconds: Number(process.env.COMPOSURE_RCLONE_BACKOFF ?? 2) });
}

export function requireRemote(config: Config, options: { prune?: boolean } = {}): Remote {
  const remote = remoteFrom(config, options);
  if (!remote) throw new UsageError("no remote configured: add remote.target (an rclone remote such as offsite:backups) to composure.yml");
  return remote;
}

/** Uploads one sealed run; records and rethrows a failure (the local run stays as it is). */
export async function uploadRun(config: Config, remote: Remote, runDir: string, manifest: Manifest): Promise<void> {
  const base = `${manifest.project}/${manifest.runId}`;
  try {
    log.info(`uploading run ${manifest.runId} to ${remote.description}`);
    if (usesRepository(manifest)) await uploadRepository(remote, repositoryOf(config, manifest.project));
    await remote.upload(runDir, base, { exclude: [manifestFile, uploadStateFile, verifiedFile, pinFile, "*.partial", "*.tmp"] });
    await checkRemoteCopy(config, remote, base, manifest);
    await remote.upload(path.join(runDir, manifestFile), `${base}/${manifestFile}`);
    await writeUploadState(runDir, { state: "uploaded", at: new Date().toISOString(), remote: remote.description });
    log.info(`run ${manifest.runId} is off-site (${remote.description})`);
  } catch (error) {
    await writeUploadState(runDir, { state: "failed", at: new Date().toISOString(), remote: remote.description, error: messageOf(error) });
    throw error instanceof RemoteError ? error : new RemoteError(`upload of run ${manifest.runId} failed: ${messageOf(error)}`);
  }
}

/** The project's repository on the remote, beside its runs. */
const remoteRepository = (project: string) => `${project}/.repository`;

/**
 * The repository goes up without deleting anything, in the order that keeps the remote copy
 * usable at every moment: pack files (immutable) first, then the indexes that name them, then the
 * snapshots, then keys and config. The run's manifest, which names the snapshots, comes after all.
 */
async function uploadRepository(remote: Remote, repository: Repository): Promise<void> {
  const base = remoteRepository(repository.project);
  for (const part of ["data", "index", "snapshots", "keys"]) {
    if (existsSync(path.join(repository.path, part))) await remote.upload(path.join(repository.path, part), `${base}/${part}`);
  }
  await remote.upload(path.join(repository.path, "config"), `${base}/config`);
}

/** Brings the project's repository from the remote (nothing deleted locally, locks left out). */
async function downloadRepository(remote: Remote, repository: Repository): Promise<void> {
  log.info(`downloading the repository of project ${repository.project} from ${remote.description} to ${repository.path}`);
  await mkdir(repository.path, { recursive: true, mode: 0o700 });
  await remote.downloadDir(remoteRepository(repository.project), repository.path, { exclude: ["locks/**"] });
}

async function checkRemoteCopy(config: Config, remote: Remote, base: string, manifest: Manifest): Promise<void> {
  const entries = new Map((await remote.list(base)).map((entry) => [entry.path, entry]));
  const snapshots = usesRepository(manifest) ? new Set((await remote.list(`${remoteRepository(manifest.project)}/snapshots`, { hashes: false })).map((entry) => entry.path)) : new Set<string>();
  for (const artifact of manifest.services.flatMap((service) => service.artifacts)) {
    if (artifact.repository) {
      if (!snapshots.has(artifact.repository.snapshot)) throw new RemoteError(`the snapshot of ${artifact.path} is missing from the repository on ${remote.description} after the upload`);
      continue;
    }
    const entry = entries.get(artifact.path);
    if (!entry) throw new RemoteError(`${artifact.path} is missing on ${remote.description} after the upload`);
    if (entry.bytes !== artifact.bytes) throw new RemoteError(`${artifact.path} has ${entry.bytes} bytes on ${remote.description}, ${artifact.bytes} locally`);
    const sha256 = entry.sha256 ?? (config.remote?.check === "hash" ? await remote.hash(`${base}/${artifact.path}`) : undefined);
    if (sha256 && sha256 !== artifact.sha256) throw new RemoteError(`${artifact.path} on ${remote.description} does not match its sha256`);
  }
}

/** The files of each complete run on the remote, newest first (a run folder without manifest.json is incomplete). */
export async function listRemoteRunFiles(remote: Remote, project: string): Promise<Map<string, Set<string>>> {
  const entries = await remote.list(project, { hashes: false }); // names are enough: no hash requests
  const files = new Map<string, Set<string>>();
  for (const entry of entries) {
    const [run, ...rest] = entry.path.split("/");
    if (!files.has(run)) files.set(run, new Set());
    files.get(run)!.add(rest.join("/"));
  }
  const complete = [...files.keys()].filter((run) => files.get(run)!.has(manifestFile)).sort().reverse();
  return new Map(complete.map((run) => [run, files.get(run)!]));
}

/** Complete runs on the remote, newest first. */
export async function listRemoteRuns(remote: Remote, project: string): Promise<string[]> {
  return [...(await listRemoteRunFiles(remote, project)).keys()];
}

/** Downloads one file of a remote run into a private temporary folder and reads it there. */
async function readRemoteRunFile<T>(remote: Remote, project: string, runId: string, name: string, read: (file: string) => Promise<T>): Promise<T> {
  const dir = path.join(os.tmpdir(), `composure-remote-${process.pid}-${runId}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    await remote.downloadFile(`${project}/${runId}/${name}`, path.join(dir, name));
    return await read(path.join(dir, name));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function readRemoteManifest(remote: Remote, project: string, runId: string, keepAs?: string): Promise<Manifest> {
  return readRemoteRunFile(remote, project, runId, manifestFile, async (file) => {
    const manifest = manifestSchema.parse(JSON.parse(await readFile(file, "utf8")));
    if (keepAs) await copyFile(file, keepAs);
    return manifest;
  });
}

/** Services whose suspected losses in a remote run were accepted (its accepted.json). */
export async function readRemoteAccepted(remote: Remote, project: string, runId: string): Promise<string[]> {
  return readRemoteRunFile(remote, project, runId, acceptedFile, (file) => readAccepted(path.dirname(file)));
}

/** Puts a run's accepted.json beside its remote copy, so the acceptance outlives this host. */
export async function uploadAccepted(remote: Remote, project: string, runDir: string): Promise<void> {
  await remote.upload(path.join(runDir, acceptedFile), `${project}/${path.basename(runDir)}/${acceptedFile}`);
}

/**
 * Brings a remote run into the local destination (artifacts first, manifest last, so an
 * interrupted download stays an incomplete run), then validates it like any local run.
 */
export async function fetchRemoteRun(config: Config, remote: Remote, project: string, selector: string): Promise<string> {
  const runs = (await listRemoteRuns(remote, project)).filter((id) => selector !== "latest" || !isRescueRun(id));
  const runId = selector === "latest" ? runs[0] : runs.find((id) => id === selector);
  if (!runId) throw new UsageError(`${selector === "latest" ? "no complete run" : `no complete run ${selector}`} of project ${project} on ${remote.description}`);
  const runDir = path.join(projectDir(config.destination, project), runId);
  if (!existsSync(path.join(runDir, manifestFile))) {
    // The manifest is read first (does the run use the repository?) and kept aside, to be put in
    // place last: an interrupted download stays an incomplete run, and it is fetched only once.
    const pending = path.join(os.tmpdir(), `composure-manifest-${process.pid}-${runId}.json`);
    try {
      if (usesRepository(await readRemoteManifest(remote, project, runId, pending))) await downloadRepository(remote, repositoryOf(config, project));
      log.info(`downloading run ${runId} from ${remote.description}`);
      await mkdir(runDir, { recursive: true, mode: 0o700 });
      await remote.downloadDir(`${project}/${runId}`, runDir, { exclude: [manifestFile] });
      await copyFile(pending, path.join(runDir, manifestFile));
    } finally {
      await rm(pending, { force: true });
    }
  }
  await readManifest(runDir, project);
  return runId;
}

/** Uploads every complete local run that has no manifest on the remote yet. */
export async function syncProject(config: Config, remote: Remote, project: string): Promise<{ uploaded: string[]; failed: string[] }> {
  const onRemote = new Set(await listRemoteRuns(remote, project));
  const result = { uploaded: [] as string[], failed: [] as string[] };
  for (const run of (await listRunDirs(config.destination, project)).filter((entry) => entry.complete).reverse()) {
    if (onRemote.has(run.id)) continue;
    try {
      await uploadRun(config, remote, run.dir, await readManifest(run.dir, project));
      result.uploaded.push(run.id);
    } catch (error) {
      log.error(messageOf(error));
      result.failed.push(run.id);
    }
  }
  return result;
}
