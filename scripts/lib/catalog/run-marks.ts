// What is learned about a sealed run afterwards, kept beside it (the manifest stays as sealed):
//   accepted.json  suspected losses an operator accepted (make accept): an operator's decision,
//                  it goes off-site with the run (make sync, make accept).
//   verify.json    each service's last make verify result for this copy of the run: it says
//                  nothing about another copy, so it stays here.
// Both written to a temporary name and renamed; a missing or unreadable file means nothing was recorded.
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { writeFileAtomically } from "./manifest.ts";

export const acceptedFile = "accepted.json";
export const verifiedFile = "verify.json";

const markSchema = z.object({ at: z.string() });
const acceptanceSchema = z.object({ services: z.record(markSchema.extend({ host: z.string() })) });
const verificationSchema = z.object({ services: z.record(markSchema.extend({ ok: z.boolean() })) });

/** The parsed file, or undefined when it is missing or not what it should be. */
export async function readJsonFile<T>(file: string, schema: z.ZodType<T, z.ZodTypeDef, unknown>): Promise<T | undefined> {
  try {
    const parsed = schema.safeParse(JSON.parse(await readFile(file, "utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Readers see the old or the new content, never a part (manifest.ts writeFileAtomically). */
export async function writeJsonAtomically(file: string, value: unknown): Promise<void> {
  await writeFileAtomically(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Services whose suspected losses in this run were accepted. */
export async function readAccepted(runDir: string): Promise<string[]> {
  return Object.keys((await readJsonFile(path.join(runDir, acceptedFile), acceptanceSchema))?.services ?? {});
}

export async function recordAccepted(runDir: string, services: string[], at = new Date()): Promise<void> {
  const file = path.join(runDir, acceptedFile);
  const acceptance = (await readJsonFile(file, acceptanceSchema)) ?? { services: {} };
  for (const service of services) acceptance.services[service] ??= { at: at.toISOString(), host: os.hostname() };
  await writeJsonAtomically(file, acceptance);
}

/** Each service the last make verify of this run checked, and whether its artifacts passed. */
export async function readVerification(runDir: string): Promise<Record<string, boolean>> {
  const verification = await readJsonFile(path.join(runDir, verifiedFile), verificationSchema);
  return Object.fromEntries(Object.entries(verification?.services ?? {}).map(([service, result]) => [service, result.ok]));
}

/** Services whose artifacts in this run passed the last make verify that checked them. */
export async function readVerified(runDir: string): Promise<string[]> {
  return Object.entries(await readVerification(runDir)).flatMap(([service, ok]) => (ok ? [service] : []));
}

export async function recordVerified(runDir: string, results: Record<string, boolean>, at = new Date()): Promise<void> {
  const file = path.join(runDir, verifiedFile);
  const verification = (await readJsonFile(file, verificationSchema)) ?? { services: {} };
  for (const [service, ok] of Object.entries(results)) verification.services[service] = { ok, at: at.toISOString() };
  await writeJsonAtomically(file, verification);
}
