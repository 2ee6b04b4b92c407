/**
 * What a stage's runs would cost against its caps, before it runs: the numbers `tmgg plan`
 * and the action's dry run show. The caps are the stage's `max_cost_usd` / `max_gpu_hours`
 * (or the caller's overrides), a shard's 1/n share of them, as the coordinator applies them.
 */
import {
  estimateBudget,
  gpusOfRun,
  type BudgetEstimate,
  type BudgetLimits,
  type RunCostModel,
} from "./budget.ts";
import type { ExperimentResult, Shard, StageConfig } from "./schemas.ts";

export interface StageBudgetOptions {
  /** The runner's name: `local` runs cost 0 USD. */
  backend: string;
  /** Overrides the stage's `gpu_type`. */
  gpuType?: string | undefined;
  /** Overrides the stage's `timeout_seconds`. */
  timeoutSeconds?: number | undefined;
  /** GPUs one run holds (a local runner's `gpusPerExperiment`); default from the GPU type. */
  gpusPerRun?: number | undefined;
  /** Overrides the stage's `max_cost_usd`. */
  maxCostUsd?: number | undefined;
  /** Overrides the stage's `max_gpu_hours`. */
  maxGpuHours?: number | undefined;
  /** The shard planned: its caps are 1/count of the stage's. */
  shard?: Shard | undefined;
  /** Your own USD per GPU-hour by GPU name, over the dated list prices. */
  prices?: Readonly<Record<string, number>> | undefined;
}

/** A stage's cost estimate and what it was made from. */
export interface StageBudget {
  estimate: BudgetEstimate;
  /** How one run was priced. */
  model: RunCostModel;
  /** The caps the sweep (or the shard) runs under. */
  limits: BudgetLimits;
  /** Runs priced. */
  runs: number;
  /** Completed stored runs whose mean duration gave `estimate.expected` (0: none). */
  storedRuns: number;
}

/**
 * A shard's share of the caps: 1/count of each, so n shards together stay within them.
 *
 * @example shareOfLimits({ maxGpuHours: 3 }, { index: 1, count: 3 }) // { maxGpuHours: 1, maxCostUsd: undefined }
 */
export function shareOfLimits(limits: BudgetLimits, shard?: Shard): BudgetLimits {
  const share = (limit: number | undefined): number | undefined =>
    limit === undefined ? undefined : limit / (shard?.count ?? 1);
  return { maxCostUsd: share(limits.maxCostUsd), maxGpuHours: share(limits.maxGpuHours) };
}

/**
 * Prices `runs` runs of the stage against its caps: the worst case (every run at its
 * timeout) and, from the mean duration of the `stored` runs that completed, the expected
 * cost; with `shard`, against that shard's share of the caps.
 *
 * @example
 * const plan = await coordinator.planStage(stage, baseConfig);
 * const { estimate } = estimateStageBudget(stage, plan.total - plan.skip.size, plan.stored.values(), { backend: "modal" });
 * estimate.mayStopEarly; // true when the worst case passes max_cost_usd or max_gpu_hours
 */
export function estimateStageBudget(
  stage: StageConfig,
  runs: number,
  stored: Iterable<ExperimentResult>,
  options: StageBudgetOptions,
): StageBudget {
  const gpuType = options.gpuType ?? stage.gpuType;
  const model: RunCostModel = {
    backend: options.backend,
    gpuType,
    timeoutSeconds: options.timeoutSeconds ?? stage.timeoutSeconds,
    gpus: gpusOfRun(gpuType, options.gpusPerRun),
    ...(options.prices ? { prices: options.prices } : {}),
  };
  const limits = shareOfLimits(
    {
      maxCostUsd: options.maxCostUsd ?? stage.maxCostUsd,
      maxGpuHours: options.maxGpuHours ?? stage.maxGpuHours,
    },
    options.shard,
  );
  const durations: number[] = [];
  for (const result of stored)
    if (result.status === "completed" && result.durationSeconds > 0)
      durations.push(result.durationSeconds);
  const mean =
    durations.length === 0 ? undefined : durations.reduce((a, b) => a + b, 0) / durations.length;
  return {
    estimate: estimateBudget(limits, model, runs, mean),
    model,
    limits,
    runs,
    storedRuns: durations.length,
  };
}
