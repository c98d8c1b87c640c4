// The outcome of a run's off-site upload, kept beside the run in upload.json (written by
// pipeline/offsite.ts, read by the metrics): never uploaded itself.
import { readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";

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
  const file = path.join(runDir, uploadStateFile);
  await writeFile(`${file}.tmp`, JSON.stringify(state), { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}
