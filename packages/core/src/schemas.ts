/**
 * The one module that knows both spellings: files on disk use snake_case keys (as the
 * original Python `tmgg` wrote them), TypeScript uses camelCase. Schemas are written in
 * camelCase; `fromDisk` / `toDisk` convert keys at the boundary, leaving user data
 * (configs, metrics, hyperparameter names) untouched.
 */
import { z } from "zod";
import { GPU_TYPES } from "./gpu-types.ts";

/** Stage names, run ids and other identifiers that become file names. */
export const IDENTIFIER_PATTERN = /^[A-Za-z0-9_-]+$/;

/** Run ids (`gnn_sbm_learning_rate=0.001_seed=1-3fa9c2d1e0`): safe as a file name and an S3 key. */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.=-]*$/;

const gpuTypeSchema = z.string().refine(
  (value) => {
    const [type, count, ...rest] = value.split(":");
    if (rest.length > 0) return false;
    if (count !== undefined && !/^[1-8]$/.test(count)) return false;
    return GPU_TYPES.some((known) => known.toLowerCase() === type?.toLowerCase());
  },
  { message: `must be one of ${GPU_TYPES.join(", ")}, optionally with ":N" GPUs (1-8)` },
);

const numberRangeSchema = z
  .strictObject({
    low: z.number(),
    high: z.number(),
    log: z.boolean().optional(),
    step: z.number().positive().optional(),
  })
  .refine((r) => r.high > r.low, { message: "high must be greater than low" })
  .refine((r) => !r.log || r.low > 0, { message: "a log range needs low > 0" });

/** A hyperparameter: a list of values (grid / categorical) or a numeric range (trials only). */
export const hyperparameterSchema = z.union([
  z.array(z.json()).min(1, { message: "needs at least one value" }),
  numberRangeSchema,
]);

export const objectiveSchema = z.strictObject({
  metric: z.string().min(1).default("val_loss"),
  mode: z.enum(["min", "max"]).default("min"),
});

export const searchKinds = ["grid", "random", "sobol", "tpe"] as const;

/** A stage file (`stages/<name>.yaml`). */
export const stageConfigSchema = z.strictObject({
  name: z.string().regex(IDENTIFIER_PATTERN, {
    message: "must contain only letters, digits, '_' and '-'",
  }),
  description: z.string().optional(),
  architectures: z.array(z.string().min(1)).min(1, { message: "needs at least one architecture" }),
  datasets: z.array(z.string().min(1)).min(1, { message: "needs at least one dataset" }),
  hyperparameterSpace: z.record(z.string().min(1), hyperparameterSchema).default({}),
  numTrials: z.int().positive().optional(),
  search: z.enum(searchKinds).optional(),
  seeds: z.array(z.int()).min(1, { message: "needs at least one seed" }).default([1]),
  gpuType: gpuTypeSchema.default("standard"),
  timeoutSeconds: z.number().positive().default(3600),
  command: z.array(z.string()).min(1, { message: "needs the program to run" }),
  configDir: z.string().min(1).optional(),
  objective: objectiveSchema.default({ metric: "val_loss", mode: "min" }),
  successCriteria: z
    .strictObject({
      metric: z.string().optional(),
      improvementThreshold: z.number().optional(),
      baseline: z.string().optional(),
    })
    .optional(),
  /** Stop starting runs once the runs started could cost more than this (USD, estimated). */
  maxCostUsd: z.number().positive().optional(),
  /** Stop starting runs once the runs started could use more than this many GPU-hours. */
  maxGpuHours: z.number().positive().optional(),
  /** Times a run that failed for infrastructure reasons is retried within a sweep; default 0. */
  maxRetries: z.int().nonnegative().max(10).optional(),
});
export type StageConfig = z.output<typeof stageConfigSchema>;
export type Objective = z.output<typeof objectiveSchema>;
export type Hyperparameter = z.output<typeof hyperparameterSchema>;

export const experimentStatuses = ["completed", "failed", "timeout", "cancelled"] as const;
export type ExperimentStatus = (typeof experimentStatuses)[number];

const finiteNumber = z.number().refine(Number.isFinite, { message: "must be a finite number" });

/** Metrics an experiment reports: an object of finite numbers. */
export const metricsSchema = z.record(z.string(), finiteNumber);
export type Metrics = z.output<typeof metricsSchema>;

/** One experiment's result (`runs/<run_id>.json`). */
export const experimentResultSchema = z.object({
  runId: z.string(),
  config: z.record(z.string(), z.unknown()),
  metrics: metricsSchema,
  checkpointPath: z.string().nullable().default(null),
  status: z.enum(experimentStatuses),
  errorMessage: z.string().nullable().default(null),
  durationSeconds: z.number().nonnegative(),
  startedAt: z.string(),
  completedAt: z.string(),
  attempt: z.int().positive().default(1),
  backend: z.string().default("unknown"),
  gpuType: z.string().default("standard"),
  logsPath: z.string().nullable().default(null),
  /** With `num_trials`: the number of the trial this run belongs to in its study. */
  trial: z.int().nonnegative().optional(),
  /** Why a run failed: the experiment itself, or the machine it ran on (retryable). */
  failureKind: z.enum(["experiment", "infrastructure"]).optional(),
});
export type ExperimentResult = z.output<typeof experimentResultSchema>;

const metricStatsSchema = z.object({
  n: z.int(),
  mean: z.number(),
  std: z.number(),
  min: z.number(),
  max: z.number(),
});
export type MetricStats = z.output<typeof metricStatsSchema>;

/** Runs that share a config but for the seed. */
export const groupSchema = z.object({
  groupId: z.string(),
  architecture: z.string(),
  dataset: z.string(),
  params: z.record(z.string(), z.unknown()),
  n: z.int(),
  runIds: z.array(z.string()),
  metrics: z.record(z.string(), metricStatsSchema),
});
export type Group = z.output<typeof groupSchema>;

export const summarySchema = z.object({
  totalExperiments: z.int(),
  completed: z.int(),
  failed: z.int(),
  timeout: z.int(),
  cancelled: z.int(),
  skipped: z.int(),
  /** Runs left to another sweep that held their lease (not in `experiments`). */
  claimed: z.int().optional(),
  successRate: z.number(),
  meanDurationSeconds: z.number(),
  totalDurationSeconds: z.number(),
});
export type Summary = z.output<typeof summarySchema>;

/** One trial of a `num_trials` study: a point run over every seed. */
export const trialSchema = z.object({
  architecture: z.string(),
  dataset: z.string(),
  number: z.int().nonnegative(),
  params: z.record(z.string(), z.unknown()),
  state: z.enum(["complete", "running", "failed"]),
  /** Mean objective over the seeds, for a complete trial. */
  value: z.number().nullable(),
  runIds: z.array(z.string()),
});
export type Trial = z.output<typeof trialSchema>;

/** One part of a stage split over `count` jobs; `index` counts from 1. */
export const shardSchema = z.object({
  index: z.int().positive(),
  count: z.int().positive(),
});
export type Shard = z.output<typeof shardSchema>;

const budgetAmountSchema = z.object({
  costUsd: z.number().nullable(),
  gpuHours: z.number().nullable(),
});

/** A sweep's budget: its limits, what the runs it started used, and what it did not start. */
export const budgetReportSchema = z.object({
  /** `max_cost_usd` and `max_gpu_hours` (null: no limit). */
  limit: budgetAmountSchema,
  /** Estimated USD and GPU-hours of the runs this sweep started (runs on `local` cost 0 USD). */
  spent: budgetAmountSchema,
  /** True when runs were left unstarted because the next one could pass a limit. */
  stoppedEarly: z.boolean(),
  /** Runs of the plan the sweep did not start because of the budget. */
  notStarted: z.int().nonnegative(),
  /** Their run ids, where they were known (a study's trials not yet asked for have none). */
  notStartedRuns: z.array(z.string()).default([]),
});
export type BudgetReport = z.output<typeof budgetReportSchema>;

/** A claim on one run (`stages/<stage>/leases/<run_id>.<generation>.json`). */
export const runLeaseSchema = z.object({
  runId: z.string(),
  owner: z.string(),
  generation: z.int().positive(),
  acquiredAt: z.string(),
  expiresAt: z.string(),
});
export type RunLeaseRecord = z.output<typeof runLeaseSchema>;

/** A stage's aggregate (`stage_result.json`). */
export const stageResultSchema = z.object({
  stageName: z.string(),
  experiments: z.array(experimentResultSchema),
  bestConfig: z.record(z.string(), z.unknown()).nullable(),
  bestMetrics: z.record(z.string(), z.number()).nullable(),
  summary: summarySchema,
  startedAt: z.string(),
  completedAt: z.string(),
  objective: objectiveSchema,
  groups: z.array(groupSchema),
  bestGroup: z.string().nullable().default(null),
  bestRun: z.string().nullable(),
  commitSha: z.string().nullable().default(null),
  backend: z.string(),
  gpuType: z.string().default("standard"),
  /** GPU cost of the runs, from a dated price table: an estimate, never a bill. */
  estimatedCostUsd: z.number().nullable().default(null),
  /** With `num_trials`: every trial, in the order each study asked for them. */
  trials: z.array(trialSchema).optional(),
  /** Set when this result covers one shard of the stage (`--shard index/count`). */
  shard: shardSchema.optional(),
  /** Runs another sweep held the lease of, so this one did not run them (not in `experiments`). */
  claimedRuns: z.array(z.string()).optional(),
  /** Runs of the plan without a stored result (`tmgg aggregate`): not run yet, or still running. */
  missingRuns: z.array(z.string()).optional(),
  /** The sweep's spending cap, what it spent and what it left unstarted. */
  budget: budgetReportSchema.optional(),
});
export type StageResult = z.output<typeof stageResultSchema>;

/** Keys whose values are user data: their own keys are never converted. */
const OPAQUE_KEYS = new Set([
  "config",
  "metrics",
  "hyperparameter_space",
  "best_config",
  "best_metrics",
  "params",
]);

/** `timeout_seconds` → `timeoutSeconds`. */
export function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** `timeoutSeconds` → `timeout_seconds`. */
export function snakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function convertKeys(value: unknown, rename: (key: string) => string): unknown {
  if (Array.isArray(value)) return value.map((item) => convertKeys(item, rename));
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[rename(key)] = OPAQUE_KEYS.has(snakeCase(key)) ? inner : convertKeys(inner, rename);
  }
  return out;
}

/** Converts a parsed file (snake_case keys) to the TypeScript spelling, without validating. */
export function camelizeKeys(value: unknown): unknown {
  return convertKeys(value, camelCase);
}

/** Converts a TypeScript value to the on-disk spelling (snake_case keys). */
export function toDisk(value: unknown): unknown {
  return convertKeys(value, snakeCase);
}

/** Parses a value read from disk (snake_case keys) with a camelCase schema. */
export function fromDisk<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  return schema.parse(camelizeKeys(raw));
}

/** Serializes a result to the JSON written on disk. */
export function toDiskJson(value: unknown): string {
  return [...toDiskJsonChunks(value)].join("");
}

/** Keys renamed as each object is written; what `userData` holds is written as it is. */
function diskJsonText(value: unknown, isUserData: boolean, indent: string): string {
  const userData = new WeakSet<object>();
  if (isUserData && value !== null && typeof value === "object") userData.add(value);
  const text = JSON.stringify(
    value,
    function (this: unknown, key: string, inner: unknown): unknown {
      if (inner === null || typeof inner !== "object") return inner;
      if (userData.has(inner) || userData.has(this as object) || OPAQUE_KEYS.has(key)) {
        userData.add(inner);
        return inner;
      }
      if (Array.isArray(inner)) return inner;
      const out: Record<string, unknown> = {};
      for (const [name, field] of Object.entries(inner)) out[snakeCase(name)] = field;
      return out;
    },
    2,
  );
  // JSON text has no raw newlines inside strings, so this indents whole lines.
  return indent === "" || text === undefined ? (text ?? "") : text.replaceAll("\n", `\n${indent}`);
}

/** What JSON.stringify writes for a member: undefined for those it leaves out. */
function jsonable(value: unknown, key: string): unknown {
  const withJson = value as { toJSON?: (key: string) => unknown } | null | undefined;
  const inner = typeof withJson?.toJSON === "function" ? withJson.toJSON(key) : value;
  return typeof inner === "function" || typeof inner === "symbol" ? undefined : inner;
}

function* diskJsonPieces(value: unknown): Generator<string> {
  const top = jsonable(value, "");
  if (top === null || typeof top !== "object" || Array.isArray(top)) {
    yield diskJsonText(top, false, "");
    return;
  }
  let first = true;
  for (const [name, field] of Object.entries(top)) {
    const key = snakeCase(name);
    const inner = jsonable(field, key);
    if (inner === undefined) continue;
    yield `${first ? "{" : ","}\n  ${JSON.stringify(key)}: `;
    first = false;
    if (!Array.isArray(inner) || inner.length === 0 || OPAQUE_KEYS.has(key)) {
      yield diskJsonText(inner, OPAQUE_KEYS.has(key), "  ");
      continue;
    }
    // Lists (a StageResult's experiments and groups) go out one item at a time.
    for (let i = 0; i < inner.length; i++) {
      const item = jsonable(inner[i], String(i));
      yield `${i === 0 ? "[" : ","}\n    ${item === undefined ? "null" : diskJsonText(item, false, "    ")}`;
    }
    yield "\n  ]";
  }
  yield first ? "{}" : "\n}";
}

/**
 * The text of {@link toDiskJson} in pieces of about `chunkChars` characters, so that a
 * large StageResult can be written without holding its whole text (`CloudStorage.put`
 * takes them).
 */
export function* toDiskJsonChunks(value: unknown, chunkChars = 64 * 1024): Generator<string> {
  let buffer = "";
  for (const piece of diskJsonPieces(value)) {
    buffer += piece;
    if (buffer.length >= chunkChars) {
      yield buffer;
      buffer = "";
    }
  }
  yield `${buffer}\n`;
}
