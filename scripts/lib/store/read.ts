// Reading artifacts back, whichever engine wrote them: the manifest entry says which.
import path from "node:path";
import { ChecksumError, hashFile, readDecompressed } from "../archive/files.ts";
import type { Artifact } from "../catalog/manifest.ts";
import type { ReadBack } from "./types.ts";

/** The decoded content of an artifact of the run in `runDir`, checked against the manifest on the way. */
export function readArtifact(runDir: string, artifact: Artifact): ReadBack {
  return readDecompressed(path.join(runDir, artifact.path), artifact, artifact);
}

/** A small artifact (accounts, a schema) read back whole as text. */
export async function readArtifactText(runDir: string, artifact: Artifact): Promise<string> {
  const source = readArtifact(runDir, artifact);
  const chunks: Buffer[] = [];
  for await (const chunk of source.stream) chunks.push(chunk as Buffer);
  await source.done;
  return Buffer.concat(chunks).toString("utf8");
}

/** Checks that every artifact is stored as the manifest says before anything is changed. */
export async function checkArtifacts(runDir: string, artifacts: Artifact[]): Promise<void> {
  for (const artifact of artifacts) {
    const file = path.join(runDir, artifact.path);
    const actual = await hashFile(file);
    if (actual.bytes !== artifact.bytes || actual.sha256 !== artifact.sha256) {
      throw new ChecksumError(`${file} does not match the manifest (size or sha256): nothing was changed`);
    }
  }
}
