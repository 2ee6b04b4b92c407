import type { z } from "zod";
import { ConfigError } from "./config-error.ts";
import {
  camelizeKeys,
  hyperparameterSchema,
  snakeCase,
  stageConfigSchema,
  type StageConfig as StageConfigType,
} from "./schemas.ts";
import { parseYaml, readTextFile, type YamlFile } from "./yaml-file.ts";

export type StageConfig = StageConfigType;

const RANGE_KEYS = ["low", "high", "log", "step"];

/** Known keys (as written on disk) of the object at a path of the stage file. */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  if (path.length === 0) return Object.keys(stageConfigSchema.shape).map(snakeCase);
  if (path.length === 1 && path[0] === "objective") return ["metric", "mode"];
  if (path.length === 1 && path[0] === "successCriteria")
    return ["metric", "improvement_threshold", "baseline"];
  if (path.length === 2 && path[0] === "hyperparameterSpace") return RANGE_KEYS;
  return [];
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** The known key closest to `key`, when one is close enough to be a likely misspelling. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = key.toLowerCase();
  for (const candidate of known) {
    const distance = editDistance(lower, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(key.length / 3))
    ? best
    : undefined;
}

/** Turns a schema path (camelCase) into the key path as written in the file. */
function diskPath(path: readonly PropertyKey[]): (string | number)[] {
  return path.map((segment, index) => {
    if (typeof segment === "number") return segment;
    const text = String(segment);
    if (index === 1 && path[0] === "hyperparameterSpace") return text;
    return snakeCase(text);
  });
}

function describePath(path: readonly (string | number)[]): string {
  return path
    .map((segment) => (typeof segment === "number" ? `[${segment}]` : segment))
    .join(".")
    .replace(/\.\[/g, "[");
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let node = value;
  for (const segment of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[segment];
  }
  return node;
}

function issueToError(issue: z.core.$ZodIssue, yaml: YamlFile, input: unknown): ConfigError {
  const file = yaml.file;
  if (issue.code === "unrecognized_keys") {
    const parent = diskPath(issue.path);
    const unknown = issue.keys[0] ?? "";
    const shown = snakeCase(unknown);
    const suggestion = closestKey(shown, knownKeysAt(issue.path));
    const keyPath = describePath([...parent, shown]);
    const pos =
      yaml.position([...parent, shown], true) ?? yaml.position([...parent, unknown], true);
    const hint = suggestion
      ? `; did you mean "${suggestion}"?`
      : `; known keys: ${knownKeysAt(issue.path).join(", ")}`;
    return new ConfigError(`unknown key "${keyPath}"${hint}`, {
      file,
      key: keyPath,
      ...(pos ? { line: pos.line, column: pos.column } : {}),
    });
  }
  if (
    issue.code === "invalid_union" &&
    issue.path[0] === "hyperparameterSpace" &&
    issue.path.length === 2
  ) {
    const value = valueAt(input, issue.path);
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      const inner = hyperparameterSchema.options[1].safeParse(value);
      const first =
        inner.error?.issues.find((i) => i.code === "unrecognized_keys") ?? inner.error?.issues[0];
      if (first) {
        return issueToError({ ...first, path: [...issue.path, ...first.path] }, yaml, input);
      }
    }
    issue = {
      ...issue,
      message: "must be a list of values ([a, b]) or a range ({low, high}, optional log and step)",
    };
  }
  const path = diskPath(issue.path);
  const keyPath = describePath(path);
  const pos = yaml.position(path);
  let message = issue.message;
  if (issue.code === "invalid_type" && valueAt(input, issue.path) === undefined) {
    message = `is required`;
  }
  return new ConfigError(`${keyPath || "stage"} ${message}`, {
    file,
    ...(keyPath ? { key: keyPath } : {}),
    ...(pos ? { line: pos.line, column: pos.column } : {}),
  });
}

/** Checks that go beyond the schema: what a stage means, not its shape. */
function checkMeaning(stage: StageConfig, yaml: YamlFile): void {
  const at = (key: (string | number)[], message: string): ConfigError => {
    const pos = yaml.position(key, true);
    return new ConfigError(message, {
      file: yaml.file,
      key: describePath(key),
      ...(pos ? { line: pos.line, column: pos.column } : {}),
    });
  };
  const search = stage.search ?? (stage.numTrials === undefined ? "grid" : "tpe");
  if (search === "grid" && stage.numTrials !== undefined) {
    throw at(
      ["search"],
      `search "grid" runs every point; remove num_trials, or use search: tpe | random | sobol`,
    );
  }
  if (search !== "grid" && stage.numTrials === undefined) {
    throw at(["search"], `search "${search}" needs num_trials (how many trials to run)`);
  }
  for (const [name, values] of Object.entries(stage.hyperparameterSpace)) {
    if (!Array.isArray(values) && search === "grid") {
      throw at(
        ["hyperparameter_space", name],
        `hyperparameter_space.${name} is a range ({low, high}); ranges need num_trials (Bayesian optimization). In a grid, list the values: [a, b, c]`,
      );
    }
  }
  if (new Set(stage.seeds).size !== stage.seeds.length) {
    throw at(
      ["seeds"],
      `seeds has duplicates (${stage.seeds.join(", ")}); each seed must appear once`,
    );
  }
  const reserved = ["seed", "architecture", "dataset", "stage"];
  for (const name of Object.keys(stage.hyperparameterSpace)) {
    if (reserved.includes(name)) {
      throw at(
        ["hyperparameter_space", name],
        `hyperparameter_space.${name} is set by the sweep itself; use the stage's ${name === "seed" ? "seeds" : `${name}s`} field instead`,
      );
    }
    if (name.split(".").some((part) => part === "")) {
      throw at(
        ["hyperparameter_space", name],
        `hyperparameter_space key "${name}" has an empty segment; write dotted keys like model.num_layers`,
      );
    }
  }
}

/**
 * Parses a stage from YAML text. Every error is a ConfigError naming the file, the key
 * and (where known) the line and column; an unknown key names the closest known one.
 */
export function parseStageConfig(text: string, file = "<stage>"): StageConfig {
  const yaml = parseYaml(text, file);
  if (yaml.value === null || yaml.value === undefined) {
    throw new ConfigError(
      "the stage file is empty; it needs at least name, architectures, datasets and command",
      { file },
    );
  }
  if (typeof yaml.value !== "object" || Array.isArray(yaml.value)) {
    throw new ConfigError("a stage file must be a mapping of keys (name:, architectures:, …)", {
      file,
      line: 1,
      column: 1,
    });
  }
  const input = camelizeKeys(yaml.value);
  const parsed = stageConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues;
    const unknown = issues.find((issue) => issue.code === "unrecognized_keys");
    throw issueToError(unknown ?? issues[0]!, yaml, input);
  }
  checkMeaning(parsed.data, yaml);
  return parsed.data;
}

/** Reads and parses a stage file (`stages/<name>.yaml`). */
export async function loadStageConfig(file: string): Promise<StageConfig> {
  return parseStageConfig(await readTextFile(file, "stage file"), file);
}

/**
 * The stage API in the original module's shape: `StageConfig.fromYaml(path)`.
 *
 * @example const stage = await StageConfig.fromYaml("stages/stage1.yaml");
 */
export const StageConfig = {
  fromYaml: loadStageConfig,
  parse: parseStageConfig,
} as const;
