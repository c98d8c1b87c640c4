// Reading artifacts back, whichever engine wrote them: the manifest entry says which
// (`repository` set: a restic snapshot; else an archive file of the run's folder).
import { existsSync } from "node:fs";
import path from "node:path";
import { ChecksumError, hashFile, readDecompressed } from "../archive/files.ts";
import { extractArchive, type Extraction } from "../archive/tar-transfer.ts";
import type { Artifact } from "../catalog/manifest.ts";
import type { Helper } from "../docker/helper.ts";
import type { PipeDir } from "../docker/pipe-dir.ts";
import { checkTree, extractFromRepository, projectSnapshots, readFromRepository, type TreeRoot } from "./repository.ts";
import { checkPassword, checkVersion, helperBinds, type Repository } from "./restic.ts";
import { mountInEveryHelper } from "../docker/helper.ts";
import type { ReadBack } from "./types.ts";

/** The artifacts of one run, read back. */
export interface ArtifactReader {
  /** A stream artifact's bytes (an archive file's decoded content), checked on the way. */
  read(artifact: Artifact): ReadBack;
  /** A small artifact (accounts, a schema) whole, as text. */
  readText(artifact: Artifact): Promise<string>;
  /** A tree artifact into `dir` of the helper (it mounts the repository when the run uses one), every entry checked first. */
  extract(artifact: Artifact, helper: Helper, pipe: PipeDir | undefined, dir: string, label: string): Promise<Extraction>;
  /** Fails unless every artifact is stored as the manifest says: run before anything is changed. */
  check(artifacts: Artifact[]): Promise<void>;
  /**
   * What can be checked of a tree artifact without reading it all (a repository snapshot's
   * entries; an archive is checked while it is read): call before stopping anything.
   */
  inspect(artifact: Artifact): Promise<void>;
}

/**
 * The reader of a run whose artifacts are `artifacts`; `repository`: where its repository
 * artifacts are (the project it was taken of). When it has any, the repository must be there, and
 * every helper from now on mounts it.
 */
export async function openRunReader(runDir: string, artifacts: Artifact[], repository: Repository): Promise<ArtifactReader> {
  if (artifacts.some((artifact) => artifact.repository)) {
    await requireRepository(repository);
    mountInEveryHelper(helperBinds(repository));
  }
  return artifactReader(runDir, repository);
}

function artifactReader(runDir: string, repository: Repository): ArtifactReader {
  let ready: Promise<void> | undefined;
  const repositoryReady = () => (ready ??= requireRepository(repository));
  const inspected = new Map<string, Promise<TreeRoot | undefined>>();
  const inspectTree = (artifact: Artifact) => {
    const snapshot = artifact.repository!.snapshot;
    if (!inspected.has(snapshot)) inspected.set(snapshot, repositoryReady().then(() => checkTree(repository, artifact.repository!)));
    return inspected.get(snapshot)!;
  };
  const reader: ArtifactReader = {
    read(artifact) {
      if (!artifact.repository) return readDecompressed(path.join(runDir, artifact.path), archived(artifact), archived(artifact));
      // restic is checked first; the stream starts once it is.
      return readFromRepository(repository, artifact, repositoryReady());
    },
    async readText(artifact) {
      const source = reader.read(artifact);
      const chunks: Buffer[] = [];
      for await (const chunk of source.stream) chunks.push(chunk as Buffer);
      await source.done;
      return Buffer.concat(chunks).toString("utf8");
    },
    async extract(artifact, helper, pipe, dir, label) {
      if (!artifact.repository) return extractArchive(helper, pipe, reader.read(artifact), dir, label);
      return extractFromRepository(repository, artifact, await inspectTree(artifact), helper, dir, label);
    },
    async inspect(artifact) {
      if (artifact.repository?.kind === "tree") await inspectTree(artifact);
    },
    async check(artifacts) {
      for (const artifact of artifacts.filter((candidate) => !candidate.repository)) {
        const file = path.join(runDir, artifact.path);
        const actual = await hashFile(file);
        if (actual.bytes !== artifact.bytes || actual.sha256 !== artifact.sha256) {
          throw new ChecksumError(`${file} does not match the manifest (size or sha256): nothing was changed`);
        }
      }
      const inRepository = artifacts.filter((candidate) => candidate.repository);
      if (inRepository.length === 0) return;
      await repositoryReady();
      const snapshots = await projectSnapshots(repository);
      const missing = inRepository.filter((artifact) => !snapshots.has(artifact.repository!.snapshot));
      if (missing.length) throw new Error(`the repository ${repository.path} lacks the snapshot${missing.length > 1 ? "s" : ""} of ${missing.map((artifact) => artifact.path).join(", ")}: nothing was changed`);
    },
  };
  return reader;
}

/** An archive artifact's stored size and hash (the schema makes sure it has them). */
function archived(artifact: Artifact): { bytes: number; sha256: string; compression?: "zstd" | "gzip"; encryption?: "none" | "age" } {
  return { bytes: artifact.bytes, sha256: artifact.sha256!, compression: artifact.compression, encryption: artifact.encryption };
}

/** A repository to read from must exist, with its password file: nothing is made at restore time. */
export async function requireRepository(repository: Repository): Promise<void> {
  await checkVersion(repository.binary);
  if (!existsSync(repository.passwordFile)) {
    throw new Error(`the run's artifacts are in the restic repository ${repository.path}, and its password file ${repository.passwordFile} is missing: put back the copy you kept (repository.password_file in composure.yml names another place)`);
  }
  if (!existsSync(path.join(repository.path, "config"))) {
    throw new Error(`the run's artifacts are in the restic repository ${repository.path}, which does not exist here: fetch it with the run (make restore FROM=remote), or set repository.path in composure.yml`);
  }
  await checkPassword(repository); // fail before anything is stopped
}
