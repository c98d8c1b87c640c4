// Where composure's checkout is: the nearest folder with a package.json above this module
// (scripts/lib, or dist/ when bundled). Files built beside the bundles (dist/) are found from here.
import { existsSync } from "node:fs";
import path from "node:path";

export const repoRoot = nearestPackageRoot(import.meta.dirname);

function nearestPackageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    if (dir === path.dirname(dir)) throw new Error(`no package.json above ${from}: run composure from its checkout`);
  }
}
