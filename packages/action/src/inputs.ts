/** The action's inputs (action.yml), read and checked once. */
import * as core from "@actions/core";
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
  };
}
