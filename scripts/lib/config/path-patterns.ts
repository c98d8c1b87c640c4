// Path patterns inside a volume (exclude_paths, secret_paths): one meaning, translated for each
// program that applies it, so the archive engine (a filter of the tar stream on the host: the
// helper's busybox tar has no exclude option), restic (--exclude), busybox find (-regex: tree
// facts, restores) and the tests agree on every name.
//
//   name        a name at any depth, and everything under it     (*.tmp, lost+found, **/node_modules)
//   a/b, /name  a path from the volume's root, and everything under it   (cache/**, data/*.log, /cache)
//   * and ?     any run of characters / one character, never a '/'; a leading '.' needs no match
//   dir/**      the folder dir of the volume's root and everything in it (like /dir)
//   name/       the same as name (a trailing '/' is ignored)
import { z } from "zod";

export interface PathPattern {
  /** As the operator wrote it (recorded in manifests, shown in messages). */
  text: string;
  /** From the volume's root (a '/' in it, or a leading '/'); otherwise a name at any depth. */
  anchored: boolean;
  /** Its components, with * and ? as wildcards. */
  components: string[];
}

/** Reads one pattern, or says what is wrong with it. */
export function parsePathPattern(text: string): { pattern?: PathPattern; problem?: string } {
  const problem = (why: string) => ({ problem: `path pattern ${JSON.stringify(text)}: ${why}` });
  if (text.trim() === "") return problem("empty");
  if (/[\u0000-\u001f\u007f]/.test(text)) return problem("contains a control character");
  if (/[[\\]/.test(text)) return problem("[ and \\ are not supported (only * and ? are wildcards)");
  let rest = text;
  const rooted = rest.startsWith("/");
  const anyDepth = rest.startsWith("**/");
  const wholeFolder = /.\/\*\*\/*$/.test(rest);
  rest = rest.replace(/^\/+/, "").replace(/^\*\*\//, "").replace(/(\/\*\*)?\/*$/, "");
  const components = rest.split("/");
  if (rest === "" || components.some((part) => part === "" || part === "." || part === "..")) return problem("give names separated by single '/', without '.' or '..' (relative to the volume's root)");
  if (components.some((part) => part.includes("**"))) return problem("** is supported only at the start (**/name) or the end (dir/**)");
  if (anyDepth && components.length > 1) return problem("**/ works only before a single name (write a/b for a path from the volume's root)");
  const anchored = rooted || (wholeFolder && !anyDepth) || components.length > 1;
  if (!anchored && new RegExp(`^${componentBody(components[0], "js")}$`, "s").test(".")) return problem("matches every name, the volume itself too (to leave a whole volume out, use volumes: or exclude:)");
  return { pattern: { text, anchored, components } };
}

/** Parses patterns that were checked already (settings, manifests); throws on a bad one. */
export function parsePathPatterns(texts: readonly string[]): PathPattern[] {
  return texts.map((text) => {
    const { pattern, problem } = parsePathPattern(text);
    if (!pattern) throw new Error(problem);
    return pattern;
  });
}

/** A list of path patterns in composure.yml (a label gives a comma-separated list). */
export const pathPatternsSchema = z.array(
  z.string().superRefine((text, ctx) => {
    const { problem } = parsePathPattern(text);
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  }),
);

const jsSpecial = /[.*+?^${}()|[\]\\/]/g;
const breSpecial = /[.*^$]/g;

/** One component as the body of a regular expression: JavaScript's, or busybox find's (POSIX basic). */
function componentBody(component: string, flavour: "js" | "bre"): string {
  const special = flavour === "js" ? jsSpecial : breSpecial;
  return [...component].map((char) => (char === "*" ? "[^/]*" : char === "?" ? "[^/]" : char.replace(special, "\\$&"))).join("");
}

/** The pattern's bytes as a byte string (latin1), as names in a tar stream are read. */
const asByteString = (text: string) => Buffer.from(text, "utf8").toString("latin1");

/**
 * True for a name (relative to the volume's root, without "./"; a byte string) that a pattern
 * matches, or that lies under a match.
 */
export function pathMatcher(patterns: readonly PathPattern[]): (name: string) => boolean {
  const expressions = patterns.map((pattern) => {
    const body = pattern.components.map((component) => componentBody(asByteString(component), "js")).join("/");
    return new RegExp(pattern.anchored ? `^${body}(/.*)?$` : `^(.*/)?${body}(/.*)?$`, "s");
  });
  return (name) => {
    const relative = name.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
    return relative !== "." && relative !== "" && expressions.some((expression) => expression.test(relative));
  };
}

/**
 * A busybox find test (argv, for `find . <test> -prune`) true for the entries the patterns match,
 * run from the volume's root: names are "./a/b". Entries under a match are pruned by the caller.
 */
export function findTest(patterns: readonly PathPattern[]): string[] {
  const tests = patterns.map((pattern) => {
    const body = pattern.components.map((component) => componentBody(component, "bre")).join("/");
    return ["-regex", pattern.anchored ? `\\./${body}` : `.*/${body}`];
  });
  return ["(", ...tests.flatMap((test, index) => (index ? ["-o", ...test] : test)), ")"];
}

/** restic backup's --exclude options for a source read at `root` (an absolute path). */
export function resticExcludes(patterns: readonly PathPattern[], root: string): string[] {
  const base = root.replace(/\/+$/, "");
  // Absolute patterns only: an unanchored restic pattern could match the components of the root itself.
  return patterns.flatMap((pattern) => ["--exclude", `${base}/${pattern.anchored ? "" : "**/"}${pattern.components.join("/")}`]);
}
