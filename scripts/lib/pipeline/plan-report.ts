// Prints a ProjectPlan with the size of each mount (measured with du in a read-only helper).
import type { Helper } from "../docker/helper.ts";
import { formatBytes } from "../log.ts";
import { withHelper } from "../docker/helper.ts";
import type { ProjectPlan } from "./plan.ts";

export async function printPlan(plan: ProjectPlan, helperImage: string): Promise<void> {
  const mounts = plan.services.flatMap((service) => service.mounts.map((selected) => selected.mount.source));
  const sizes = mounts.length ? await measure(helperImage, plan.project.name, mounts) : new Map<string, number>();
  const out: string[] = [`project ${plan.project.name}:`];
  for (const planned of plan.services) {
    if (planned.excluded) {
      out.push(`  ${planned.service.name}: excluded (composure.exclude)`);
      continue;
    }
    const stops = planned.strategy === "volume" && planned.settings.stop !== false && planned.mounts.length > 0;
    out.push(`  ${planned.service.name}: strategy ${planned.strategy} (${planned.strategySource}), ${stops ? "stopped during capture" : "no downtime"}, tier ${planned.settings.tier ?? "medium"}`);
    // "+" is archived whole; "~" is where a hot strategy reads its data (a dump or snapshot is archived instead).
    const mark = planned.strategy === "volume" ? "+" : "~";
    for (const selected of planned.mounts) {
      const size = sizes.get(selected.mount.source);
      out.push(`    ${mark} ${selected.mount.type} ${selected.mount.source} -> ${selected.mount.destination} (${size === undefined ? "size unknown" : formatBytes(size)})`);
    }
    if (planned.settings.exclude_paths?.length) out.push(`      left out of each volume (exclude_paths): ${planned.settings.exclude_paths.join(", ")}`);
    if (planned.settings.secret_paths?.length) out.push(`      secret paths (backed up; a restore keeps the live ones unless RESTORE_SECRETS=1): ${planned.settings.secret_paths.join(", ")}`);
    if (mark === "~" && planned.mounts.length) out.push(`      (~: data of the service; the ${planned.strategy} strategy archives its own dump or snapshot, not these volumes as they are)`);
    for (const skipped of planned.skipped) out.push(`    - ${skipped.mount.type} ${skipped.mount.source}: ${skipped.reason}`);
  }
  process.stdout.write(`${out.join("\n")}\n`);
}

async function measure(image: string, project: string, sources: string[]): Promise<Map<string, number>> {
  return withHelper(image, project, sources.map((source, index) => `${source}:/v/${index}:ro`), async (helper: Helper) => {
    const result = await helper.run(["du", "-sk", ...sources.map((_, index) => `/v/${index}`)]);
    const sizes = new Map<string, number>();
    for (const line of result.stdout.split("\n")) {
      const match = /^(\d+)\s+\/v\/(\d+)$/.exec(line.trim());
      if (match) sizes.set(sources[Number(match[2])], Number(match[1]) * 1024);
    }
    return sizes;
  });
}
