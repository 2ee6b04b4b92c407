/** The action's inputs (action.yml), read and checked once. */
import * as core from "@actions/core";
import { parseShard, type Shard } from "@tmgg/core";
import { ROLES, type Role } from "./authorize.ts";

export interface ActionInputs {
  githubToken: string;
  backend: "local" | "modal";
  stagesDir: string;
  storage: string;
  parallelism: number;
  gpuType: string | undefined;
  permission: Role;
  allowForks: boolean;
  modalTokenId: string | undefined;
  modalTokenSecret: string | undefined;
  /** For `workflow_dispatch` and `pull_request`: the stage to run. */
  stage: string | undefined;
  /** For `workflow_dispatch` and `pull_request`: `key=value` overrides. */
  overrides: string[];
  fresh: boolean;
  dryRun: boolean;
  /** Gate mode: check and answer everything, but leave real runs to a later job (output `run`). */
  gate: boolean;
  baseConfig: string | undefined;
  progressIntervalSeconds: number;
  /** Runs only this part of the stage (`i/n`); the aggregate job reports the whole. */
  shard: Shard | undefined;
  /** Aggregate mode: join every stored run of the stage into the final report, run nothing. */
  aggregate: boolean;
  /** Caps over the stage's own (the tighter one applies). */
  maxCostUsd: number | undefined;
  maxGpuHours: number | undefined;
  maxRetries: number | undefined;
  /** How long a claim on a run lasts without renewal; default core's (120 s). */
  leaseSeconds: number | undefined;
}

/** Thrown for an input that cannot be used; the message says which and what to write. */
export class InputError extends Error {
  override readonly name = "InputError";
}

function optional(name: string): string | undefined {
  const value = core.getInput(name);
  return value === "" ? undefined : value;
}

function bool(name: string): boolean {
  const value = core.getInput(name).trim().toLowerCase();
  if (value === "" || value === "false") return false;
  if (value === "true") return true;
  throw new InputError(
    `[action] input ${name} must be true or false, got ${JSON.stringify(value)}`,
  );
}

function number(name: string, fallback: number, min: number, isInteger: boolean): number {
  const text = core.getInput(name).trim();
  if (text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < min || (isInteger && !Number.isInteger(value))) {
    throw new InputError(
      `[action] input ${name} must be ${isInteger ? "a whole number" : "a number"} >= ${min}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

/** An optional number: undefined when empty, else at least `min` (above it when `isAboveMin`). */
function optionalNumber(
  name: string,
  min: number,
  options: { isInteger?: boolean; isAboveMin?: boolean } = {},
): number | undefined {
  const text = core.getInput(name).trim();
  if (text === "") return undefined;
  const value = Number(text);
  const isInRange = options.isAboveMin ? value > min : value >= min;
  if (!Number.isFinite(value) || !isInRange || (options.isInteger && !Number.isInteger(value))) {
    throw new InputError(
      `[action] input ${name} must be ${options.isInteger ? "a whole number" : "a number"} ${options.isAboveMin ? ">" : ">="} ${min}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

function shardInput(): Shard | undefined {
  const text = core.getInput("shard").trim();
  if (text === "") return undefined;
  try {
    return parseShard(text);
  } catch (error) {
    throw new InputError(
      `[action] input ${(error as Error).message}; in a matrix job write shard: \${{ matrix.shard }}/<count>`,
    );
  }
}

export function readInputs(): ActionInputs {
  const backend = core.getInput("backend").trim() || "local";
  if (backend !== "local" && backend !== "modal") {
    throw new InputError(
      `[action] input backend must be local or modal, got ${JSON.stringify(backend)}`,
    );
  }
  const permission = (core.getInput("permission").trim() || "write").toLowerCase();
  if (!(ROLES as readonly string[]).includes(permission)) {
    throw new InputError(
      `[action] input permission must be one of ${ROLES.join(", ")}, got ${JSON.stringify(permission)}`,
    );
  }
  const githubToken = core.getInput("github-token");
  if (!githubToken)
    throw new InputError(
      "[action] input github-token is empty; pass ${{ github.token }} or a token with pull-requests: write",
    );
  const modalTokenId = optional("modal-token-id");
  const modalTokenSecret = optional("modal-token-secret");
  if (modalTokenId) core.setSecret(modalTokenId);
  if (modalTokenSecret) core.setSecret(modalTokenSecret);
  return {
    githubToken,
    backend,
    stagesDir: optional("stages-dir") ?? "stages",
    storage: optional("storage") ?? ".tmgg/results",
    parallelism: number("parallelism", 4, 1, true),
    gpuType: optional("gpu-type"),
    permission: permission as Role,
    allowForks: bool("allow-forks"),
    modalTokenId,
    modalTokenSecret,
    stage: optional("stage")?.trim(),
    overrides: core.getInput("overrides").split(/\s+/).filter(Boolean),
    fresh: bool("fresh"),
    dryRun: bool("dry-run"),
    gate: bool("gate"),
    baseConfig: optional("base-config"),
    progressIntervalSeconds: number("progress-interval-seconds", 15, 0, false),
    ...scaleOutInputs(),
  };
}

function scaleOutInputs(): Pick<
  ActionInputs,
  "shard" | "aggregate" | "maxCostUsd" | "maxGpuHours" | "maxRetries" | "leaseSeconds"
> {
  const shard = shardInput();
  const aggregate = bool("aggregate");
  if (shard && aggregate)
    throw new InputError(
      "[action] inputs shard and aggregate are both set; a shard job runs its part (shard: i/n), the aggregate job after the shards joins them (aggregate: true)",
    );
  if (aggregate && bool("gate"))
    throw new InputError(
      "[action] inputs gate and aggregate are both set; the gate job checks the command, the aggregate job after the shards reports",
    );
  return {
    shard,
    aggregate,
    maxCostUsd: optionalNumber("max-cost-usd", 0, { isAboveMin: true }),
    maxGpuHours: optionalNumber("max-gpu-hours", 0, { isAboveMin: true }),
    maxRetries: optionalNumber("max-retries", 0, { isInteger: true }),
    leaseSeconds: optionalNumber("lease-seconds", 1),
  };
}
