import { describe, expect, it } from "vitest";
import type { ExperimentResult } from "./schemas.ts";
import { estimateStageBudget, shareOfLimits } from "./stage-budget.ts";
import { parseStageConfig } from "./stage-config.ts";

const HOUR = 3600;
const STAGE = parseStageConfig(
  `name: s
architectures: [models/a]
datasets: [data/b]
hyperparameter_space:
  learning_rate: [0.1, 0.01]
seeds: [1, 2]
gpu_type: A10G
timeout_seconds: 3600
max_cost_usd: 6
command: [node, train.mjs]
`,
  "stages/s.yaml",
);

function stored(status: ExperimentResult["status"], durationSeconds: number): ExperimentResult {
  const now = new Date().toISOString();
  return {
    runId: `run-${status}-${durationSeconds}`,
    config: {},
    metrics: {},
    checkpointPath: null,
    status,
    errorMessage: null,
    durationSeconds,
    startedAt: now,
    completedAt: now,
    attempt: 1,
    backend: "modal",
    gpuType: "A10G",
    logsPath: null,
  };
}

describe("shareOfLimits", () => {
  it("gives a shard 1/n of each cap and leaves unset caps unset", () => {
    expect(shareOfLimits({ maxGpuHours: 3 }, { index: 2, count: 3 })).toEqual({
      maxCostUsd: undefined,
      maxGpuHours: 1,
    });
    expect(shareOfLimits({ maxCostUsd: 5 })).toEqual({ maxCostUsd: 5, maxGpuHours: undefined });
  });
});

describe("estimateStageBudget", () => {
  it("prices the runs at the stage's GPU and timeout against its cap, expected from completed stored runs", () => {
    const budget = estimateStageBudget(
      STAGE,
      4,
      [stored("completed", HOUR / 10), stored("completed", HOUR / 10), stored("failed", HOUR)],
      { backend: "modal" },
    );
    expect(budget.model).toMatchObject({ gpuType: "A10G", timeoutSeconds: HOUR, gpus: 1 });
    expect(budget.limits).toEqual({ maxCostUsd: 6, maxGpuHours: undefined });
    expect(budget.estimate.worstCase.costUsd).toBeCloseTo(4 * 1.1);
    expect(budget.estimate.expected?.costUsd).toBeCloseTo(0.44);
    expect(budget.storedRuns).toBe(2);
    expect(budget.estimate.mayStopEarly).toBe(false);
  });

  it("takes overrides of the GPU, timeout and caps, and a shard's share of the caps", () => {
    const budget = estimateStageBudget(STAGE, 4, [], {
      backend: "local",
      gpuType: "H100:2",
      timeoutSeconds: HOUR / 2,
      maxGpuHours: 3,
      shard: { index: 1, count: 3 },
    });
    expect(budget.limits).toEqual({ maxCostUsd: 2, maxGpuHours: 1 });
    expect(budget.estimate.worstCase).toEqual({ costUsd: 0, gpuHours: 4 });
    expect(budget.estimate.expected).toBeNull();
    expect(budget.estimate.runsAtOnce).toBe(1);
    expect(budget.estimate.mayStopEarly).toBe(true);
  });
});
