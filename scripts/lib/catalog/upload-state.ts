// The outcome of a run's off-site upload, kept beside the run in upload.json (written by
// pipeline/offsite.ts, read by the metrics): never uploaded itself.
import path from "node:path";
import { z } from "zod";
import { readJsonFile, writeJsonAtomically } from "./run-marks.ts";

export const uploadStateFile = "upload.json";

const uploadStateSchema = z.object({ state: z.enum(["uploaded", "failed"]), at: z.string(), remote: z.string(), error: z.string().optional() });
export type UploadState = z.infer<typeof uploadStateSchema>;

export async function readUploadState(runDir: string): Promise<UploadState | undefined> {
  return readJsonFile(path.join(runDir, uploadStateFile), uploadStateSchema);
}

export async function writeUploadState(runDir: string, state: UploadState): Promise<void> {
  await writeJsonAtomically(path.join(runDir, uploadStateFile), state);
}
