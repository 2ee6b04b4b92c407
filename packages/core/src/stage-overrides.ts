/**
 * `key=value` overrides of a stage, as typed after `/sweep <stage>` in a PR comment:
 * stage fields (`seeds=1,2`, `timeout_seconds=60`, `gpu_type=T4`, `max_cost_usd=5`) and hyperparameters
 * (`learning_rate=1e-3`, `model.num_layers=4,8`). The result is validated like a stage
 * file, so an override can never produce a stage that a file could not.
 */
import { parse as parseYamlValue } from "yaml";
import { ConfigError } from "./config-error.ts";
import { snakeCase, stageConfigSchema, toDisk, type StageConfig } from "./schemas.ts";
import { closestKey, parseStageConfig } from "./stage-config.ts";

/** Stage fields an override may set (as written in the stage file); every other field is fixed by the file. */
export const OVERRIDABLE_STAGE_KEYS = [
  "seeds",
  "timeout_seconds",
  "gpu_type",
  "num_trials",
  "architectures",
  "datasets",
  "max_cost_usd",
  "max_gpu_hours",
  "max_retries",
] as const;

type OverridableKey = (typeof OVERRIDABLE_STAGE_KEYS)[number];

const STAGE_KEYS: ReadonlySet<string> = new Set(
  Object.keys(stageConfigSchema.shape).map(snakeCase),
);
const LIST_KEYS: ReadonlySet<string> = new Set(["seeds", "architectures", "datasets"]);
const VALIDATION_LABEL = "<overrides>";
const OVERRIDE_PATTERN = /^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$/s;

function isOverridable(key: string): key is OverridableKey {
  return (OVERRIDABLE_STAGE_KEYS as readonly string[]).includes(key);
}

/** One value typed by a user: YAML scalars, so `1e-3` is a number, `true` a boolean, `abc` a string. */
function scalar(text: string, raw: string, where: { file?: string; key: string }): unknown {
  const trimmed = text.trim();
  if (trimmed === "") {
    throw new ConfigError(
      `override "${raw}" has an empty value; write ${where.key}=<value>[,<value>…]`,
      where,
    );
  }
  try {
    const value: unknown = parseYamlValue(trimmed);
    if (value !== null && typeof value === "object") return trimmed;
    return value;
  } catch {
    return trimmed;
  }
}

/** `a,b,c` → three values; `[…]` is a YAML flow list, for values that are lists themselves. */
function values(text: string, raw: string, where: { file?: string; key: string }): unknown[] {
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = parseYamlValue(trimmed);
    } catch (error) {
      throw new ConfigError(
        `override "${raw}" is not a valid list: ${(error as Error).message.split("\n")[0]}`,
        where,
        { cause: error },
      );
    }
    if (!Array.isArray(parsed) || parsed.length === 0) {
      throw new ConfigError(`override "${raw}" must be a non-empty list like [a, b]`, where);
    }
    return parsed;
  }
  return trimmed.split(",").map((item) => scalar(item, raw, where));
}

/**
 * Applies `key=value` overrides to a stage and returns the new, validated stage (the
 * input is not changed). Stage fields: `seeds`, `architectures` and `datasets` take a
 * comma list; `timeout_seconds`, `gpu_type`, `num_trials`, `max_cost_usd`, `max_gpu_hours`
 * and `max_retries` one value. Any other key
 * must be a hyperparameter of the stage (dotted keys as in `hyperparameter_space`); its
 * value is one value or a comma list, which becomes the values swept. Unknown keys are
 * a ConfigError naming the closest known key; `file` names the stage file in errors.
 *
 * @example
 * const narrowed = applyStageOverrides(stage, ["seeds=1,2", "learning_rate=1e-3"], "stages/stage1.yaml");
 */
export function applyStageOverrides(
  stage: StageConfig,
  overrides: readonly string[],
  file?: string,
): StageConfig {
  if (overrides.length === 0) return stage;
  const disk = toDisk(stage) as Record<string, unknown>;
  const space = { ...(disk.hyperparameter_space as Record<string, unknown>) };
  const hyperparameters = Object.keys(stage.hyperparameterSpace);
  const known = [...OVERRIDABLE_STAGE_KEYS, ...hyperparameters];
  const seen = new Map<string, string>();
  const fileWhere = file === undefined ? {} : { file };

  for (const raw of overrides) {
    const match = OVERRIDE_PATTERN.exec(raw);
    if (!match) {
      throw new ConfigError(
        `override "${raw}" is not key=value; write e.g. seeds=1,2 or learning_rate=1e-3`,
        fileWhere,
      );
    }
    const key = match[1]!;
    const text = match[2]!;
    const where = { ...fileWhere, key };
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw new ConfigError(
        `override key "${key}" is given twice ("${earlier}", "${raw}"); give it once`,
        where,
      );
    }
    seen.set(key, raw);

    if (Object.hasOwn(stage.hyperparameterSpace, key)) {
      space[key] = values(text, raw, where);
    } else if (isOverridable(key)) {
      disk[key] = LIST_KEYS.has(key) ? values(text, raw, where) : scalar(text, raw, where);
    } else if (STAGE_KEYS.has(key)) {
      throw new ConfigError(
        `"${key}" cannot be overridden (it is fixed by the stage file); overridable: ${known.join(", ")}`,
        where,
      );
    } else {
      const suggestion = closestKey(key, known);
      throw new ConfigError(
        `unknown override key "${key}"${suggestion ? `; did you mean "${suggestion}"?` : ""} (overridable: ${known.join(", ")})`,
        where,
      );
    }
  }
  disk.hyperparameter_space = space;

  try {
    return parseStageConfig(JSON.stringify(disk), VALIDATION_LABEL);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const message = error.message.replace(/^<overrides>(:\d+(:\d+)?)?: /, "");
    throw new ConfigError(
      `the overrides ${overrides.join(" ")} make the stage invalid: ${message}`,
      { ...fileWhere, ...(error.key === undefined ? {} : { key: error.key }) },
      { cause: error },
    );
  }
}
