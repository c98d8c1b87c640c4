// Turns zod issues into composure's one-line-per-problem form:
//   at 'services.db.strategy': unknown strategy "postgress" (did you mean "postgres"?)
import { z } from "zod";
import { didYouMean } from "./did-you-mean.ts";

/** The schema that validates the value found at `path` under `schema`, if it can be followed. */
function schemaAt(schema: z.ZodTypeAny, path: (string | number)[]): z.ZodTypeAny | undefined {
  let current: z.ZodTypeAny | undefined = schema;
  for (const key of path) {
    current = unwrap(current);
    if (current instanceof z.ZodObject) current = current.shape[key];
    else if (current instanceof z.ZodRecord) current = current.valueSchema;
    else if (current instanceof z.ZodArray) current = current.element;
    else return undefined;
  }
  return current && unwrap(current);
}

function unwrap(schema: z.ZodTypeAny | undefined): z.ZodTypeAny | undefined {
  let current = schema;
  while (current instanceof z.ZodOptional || current instanceof z.ZodDefault || current instanceof z.ZodEffects) {
    current = current instanceof z.ZodEffects ? current.innerType() : current._def.innerType;
  }
  return current;
}

export function formatPath(path: (string | number)[]): string {
  return path.length === 0 ? "(top level)" : path.join(".");
}

export function describeIssues(error: z.ZodError, schema: z.ZodTypeAny, prefix: (string | number)[] = []): string[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      const owner = schemaAt(schema, issue.path);
      const known = owner instanceof z.ZodObject ? Object.keys(owner.shape) : [];
      return issue.keys.map(
        (key) => `at '${formatPath([...prefix, ...issue.path, key])}': unknown key "${key}"${didYouMean(key, known)}`,
      );
    }
    return [`at '${formatPath([...prefix, ...issue.path])}': ${issue.message}`];
  });
}
