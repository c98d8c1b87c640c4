// The outcome of a run's off-site upload, kept beside the run in upload.json (written by
// pipeline/offsite.ts, read by the metrics): never uploaded itself.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomically } from "./manifest.ts";

export const uploadStateFile = "upload.json";

export interface UploadState {
  state: "uploaded" | "failed";
  at: string;
  remote: string;
  error?: string;
}

export async function readUploadState(runDir: string): Promise<UploadState | undefined> {
  try {
    return JSON.parse(await readFile(path.join(runDir, uploadStateFile), "utf8")) as UploadState;
  } catch {
    return undefined;
  }
}

export async function writeUploadState(runDir: string, state: UploadState): Promise<void> {
  await writeFileAtomically(path.join(runDir, uploadStateFile), JSON.stringify(state));
}
