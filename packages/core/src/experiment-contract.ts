/**
 * The experiment contract (DESIGN.md section 4), shared by every runner: the argv
 * placeholders, the environment, reading `metrics.json`, and turning an exit into a status.
 */
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import type { ExperimentSpec, ProgressPoint } from "./cloud-runner.ts";
import { metricsSchema, type ExperimentStatus, type Metrics } from "./schemas.ts";

export const METRICS_FILE = "metrics.json";
export const PROGRESS_FILE = "metrics.jsonl";
export const CONFIG_FILE = "config.json";
export const STDOUT_FILE = "stdout.log";
export const STDERR_FILE = "stderr.log";
export const CHECKPOINTS_DIR = "checkpoints";

/** The spec with its defaults filled in. */
export interface ResolvedSpec {
  runId: string;
  config: Record<string, unknown>;
  command: readonly string[];
  stage: string;
  seed: number;
  projectRoot: string;
  objectiveMetric: string;
  attempt: number;
}

/** Fills in an ExperimentSpec's defaults. */
export function resolveSpec(spec: ExperimentSpec): ResolvedSpec {
  const configSeed = spec.config["seed"];
  return {
    runId: spec.runId,
    config: spec.config,
    command: spec.command,
    stage: spec.stage ?? "adhoc",
    seed: spec.seed ?? (typeof configSeed === "number" ? configSeed : 0),
    projectRoot: spec.projectRoot ?? process.cwd(),
    objectiveMetric: spec.objectiveMetric ?? "val_loss",
    attempt: spec.attempt ?? 1,
  };
}

function hydraValue(value: unknown): string {
  if (typeof value === "string") {
    return /^[\w./:+-]*$/.test(value) && value !== "" ? value : JSON.stringify(value);
  }
  return JSON.stringify(value);
}

/**
 * One `key=value` argument per leaf of the config, in Hydra's override syntax
 * (`model.num_layers=4`). Lists are leaves (`noise_levels=[0.01,0.05]`).
 *
 * @example hydraOverrides({ model: { num_layers: 4 }, seed: 1 }) // ["model.num_layers=4", "seed=1"]
 */
export function hydraOverrides(config: Record<string, unknown>, prefix = ""): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(config)) {
    const dotted = prefix ? `${prefix}.${key}` : key;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      out.push(...hydraOverrides(value as Record<string, unknown>, dotted));
    } else {
      out.push(`${dotted}=${hydraValue(value)}`);
    }
  }
  return out;
}

/** Paths as the experiment sees them (remote runners pass their own). */
export interface ContractPaths {
  runDir: string;
  configPath: string;
}

/**
 * Expands the argv placeholders. `{overrides}` must stand alone as an argument and
 * becomes one argument per config leaf; the others may sit inside an argument.
 */
export function expandCommand(spec: ResolvedSpec, paths: ContractPaths): string[] {
  const values: Record<string, string> = {
    config: paths.configPath,
    run_dir: paths.runDir,
    run_id: spec.runId,
    seed: String(spec.seed),
  };
  const argv: string[] = [];
  for (const arg of spec.command) {
    if (arg === "{overrides}") {
      argv.push(...hydraOverrides(spec.config));
      continue;
    }
    argv.push(arg.replace(/\{(config|run_dir|run_id|seed)\}/g, (_, name: string) => values[name]!));
  }
  return argv;
}

/** The `TMGG_*` environment of a run. */
export function contractEnv(spec: ResolvedSpec, paths: ContractPaths): Record<string, string> {
  return {
    TMGG_RUN_ID: spec.runId,
    TMGG_STAGE: spec.stage,
    TMGG_SEED: String(spec.seed),
    TMGG_RUN_DIR: paths.runDir,
    TMGG_CONFIG: paths.configPath,
  };
}

/** The metrics file's content, or why it could not be used. */
export type MetricsReading = { metrics: Metrics } | { metrics: Metrics; problem: string };

/** Parses the text of `metrics.json` (undefined when the file does not exist). */
export function parseMetrics(text: string | undefined): MetricsReading {
  if (text === undefined) return { metrics: {}, problem: `no ${METRICS_FILE} was written` };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return {
      metrics: {},
      problem: `${METRICS_FILE} is not valid JSON (${(error as Error).message})`,
    };
  }
  const parsed = metricsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at "${issue.path.join(".")}"` : "";
    return {
      metrics: {},
      problem: `${METRICS_FILE} must be an object of finite numbers; ${issue?.message ?? "invalid"}${where}`,
    };
  }
  return { metrics: parsed.data };
}

/**
 * The regular files under a run folder, as `/`-separated relative paths in name order;
 * symbolic links are never followed, and `checkpoints/` is left out unless asked for.
 * A missing folder has none.
 */
export async function* runFolderFiles(
  dir: string,
  options: { checkpoints?: boolean } = {},
  prefix = "",
): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (relative !== CHECKPOINTS_DIR || options.checkpoints) {
        yield* runFolderFiles(path.join(dir, entry.name), options, relative);
      }
    } else if (entry.isFile()) {
      yield relative;
    }
  }
}

/** Reads and checks `<runDir>/metrics.json`. */
export async function readMetricsFile(runDir: string): Promise<MetricsReading> {
  let text: string | undefined;
  try {
    text = await readFile(path.join(runDir, METRICS_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return parseMetrics(text);
}

/**
 * A `metrics.jsonl` line's numeric fields, or undefined when the line is not a JSON
 * object with some (blank, partial or malformed lines are skipped, never fatal).
 */
export function parseProgressLine(line: string): ProgressPoint | undefined {
  if (!line.trim()) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return undefined;
  const point: ProgressPoint = {};
  for (const [key, value] of Object.entries(raw)) {
    if (typeof value === "number" && Number.isFinite(value)) point[key] = value;
  }
  return Object.keys(point).length > 0 ? point : undefined;
}

/** How a run ended, as the runner saw it. */
export interface RunEnding {
  exitCode: number | null;
  signal?: string | null;
  timedOut: boolean;
  cancelled: boolean;
  timeoutSeconds: number;
  stderrTail: string;
  metrics: MetricsReading;
  objectiveMetric: string;
}

/** Applies the contract's outcome rules: status, error message and metrics. */
export function judgeOutcome(ending: RunEnding): {
  status: ExperimentStatus;
  errorMessage: string | null;
  metrics: Metrics;
} {
  const { metrics } = ending.metrics;
  const tail = ending.stderrTail.trimEnd();
  const withTail = (message: string): string =>
    tail ? `${message}\n--- stderr (last lines) ---\n${tail}` : message;
  if (ending.cancelled)
    return { status: "cancelled", errorMessage: "cancelled by the user", metrics };
  if (ending.timedOut) {
    return {
      status: "timeout",
      errorMessage: withTail(`timed out after ${ending.timeoutSeconds} s`),
      metrics,
    };
  }
  if (ending.exitCode !== 0) {
    const how =
      ending.exitCode === null
        ? `was killed by ${ending.signal ?? "a signal"}`
        : `exited with code ${ending.exitCode}`;
    return { status: "failed", errorMessage: withTail(`the experiment ${how}`), metrics };
  }
  if ("problem" in ending.metrics) {
    return {
      status: "failed",
      errorMessage: withTail(`exited 0 but ${ending.metrics.problem}`),
      metrics,
    };
  }
  if (!(ending.objectiveMetric in metrics)) {
    const have = Object.keys(metrics);
    return {
      status: "failed",
      errorMessage: withTail(
        `exited 0 but ${METRICS_FILE} has no "${ending.objectiveMetric}" (the objective); it has ${have.length ? have.join(", ") : "no metrics"}`,
      ),
      metrics,
    };
  }
  return { status: "completed", errorMessage: null, metrics };
}

/**
 * Keeps the last `maxLines` lines (at most `maxBytes`) of a stream, so memory stays
 * bounded however much a run prints.
 */
export class TailBuffer {
  #chunks: string[] = [];
  #size = 0;
  readonly maxLines: number;
  readonly maxBytes: number;

  constructor(maxLines = 40, maxBytes = 8192) {
    this.maxLines = maxLines;
    this.maxBytes = maxBytes;
  }

  push(chunk: string | Uint8Array): void {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    this.#chunks.push(text);
    this.#size += text.length;
    while (this.#size > this.maxBytes * 2 && this.#chunks.length > 1) {
      this.#size -= this.#chunks.shift()!.length;
    }
    if (this.#size > this.maxBytes * 2) {
      const only = this.#chunks[0]!.slice(-this.maxBytes);
      this.#chunks = [only];
      this.#size = only.length;
    }
  }

  /** The kept tail as text. */
  toString(): string {
    const text = this.#chunks.join("").slice(-this.maxBytes);
    const lines = text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    return lines.slice(-this.maxLines).join("\n");
  }
}
