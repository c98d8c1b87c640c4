// Test support: a strategy's probe of a live service against the facts a run recorded, built
// the way the pipeline builds it (the service's current settings, a scope and journal of its own).
import { discoverProject } from "../../scripts/lib/compose/discover.ts";
import { readManifest } from "../../scripts/lib/catalog/manifest.ts";
import { parseConfig } from "../../scripts/lib/config/load.ts";
import { StopJournal } from "../../scripts/lib/lifecycle/journal.ts";
import { currentSettings } from "../../scripts/lib/pipeline/restore.ts";
import { getStrategy, strategyKinds } from "../../scripts/lib/strategies/registry.ts";
import { createRunScope, type ProbeResult } from "../../scripts/lib/strategies/types.ts";
import { busyboxImage, tempDir } from "./composure.ts";

/** The probe of `serviceName` in `projectName` as it runs now, compared with what run `runDir` recorded of it. */
export async function probeLive(projectName: string, runDir: string, serviceName: string): Promise<ProbeResult> {
  const config = parseConfig({}, strategyKinds);
  const record = (await readManifest(runDir, projectName)).services.find((candidate) => candidate.name === serviceName);
  if (!record) throw new Error(`run ${runDir} has no record of ${serviceName}`);
  const project = await discoverProject(projectName);
  const service = project.services.find((candidate) => candidate.name === serviceName);
  if (!service) throw new Error(`project ${projectName} runs no service ${serviceName}`);
  const strategy = getStrategy(record.strategy);
  if (!strategy.probe) throw new Error(`strategy ${record.strategy} has no probe`);
  const ctx = { config, project, ...currentSettings(config, project, record), helperImage: busyboxImage, journal: new StopJournal(tempDir("probe-journal")), scope: createRunScope(), service };
  return strategy.probe(ctx, record.artifacts);
}
