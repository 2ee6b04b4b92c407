/**
 * Spending caps of a sweep (`max_cost_usd`, `max_gpu_hours`). A run is started only when
 * what the sweep has spent, plus every run in flight at its worst case (its whole
 * `timeout_seconds` on all its GPUs), plus the new run's worst case, stays within the caps:
 * the sweep cannot pass them even if every run in flight hits its timeout.
 */
import { ConfigError } from "./config-error.ts";
import { estimateCostUsd } from "./gpu-prices.ts";
import { GPU_TIERS } from "./gpu-types.ts";
import type { BudgetReport } from "./schemas.ts";

/** USD and GPU-hours; a null cost means the GPU type has no price. */
export interface BudgetAmount {
  costUsd: number | null;
  gpuHours: number;
}

export interface BudgetLimits {
  /** Most estimated USD the runs a sweep starts may cost. */
  maxCostUsd?: number | undefined;
  /** Most GPU-hours (GPUs × hours) the runs a sweep starts may use. */
  maxGpuHours?: number | undefined;
}

/** What one run of a stage costs, to price it before and after it runs. */
export interface RunCostModel {
  /** The runner's name: `local` runs on your own GPUs and costs 0 USD. */
  backend: string;
  gpuType: string;
  timeoutSeconds: number;
  /** GPUs one run holds (see {@link gpusOfRun}). */
  gpus: number;
  /** Your own USD per GPU-hour by GPU name, over the dated list prices. */
  prices?: Readonly<Record<string, number>> | undefined;
}

/**
 * GPUs one run holds: `gpusPerRun` when given (a local runner's `gpusPerExperiment`, which
 * may be a fraction), 0 for `cpu`, N for `TYPE:N`, a tier's own count (`multi` is 2), else 1.
 *
 * @example gpusOfRun("H100:2") // 2; gpusOfRun("cpu") // 0; gpusOfRun("A10G", 0.25) // 0.25
 */
export function gpusOfRun(gpuType: string, gpusPerRun?: number): number {
  if (gpusPerRun !== undefined) return gpusPerRun;
  const [type = "", count] = gpuType.trim().split(":");
  if (type.toLowerCase() === "cpu") return 0;
  if (count !== undefined) return Number(count);
  const tier = Object.entries(GPU_TIERS).find(([name]) => name === type.toLowerCase())?.[1];
  const tierCount = tier?.split(":")[1];
  return tierCount === undefined ? 1 : Number(tierCount);
}

/**
 * Estimated USD of `seconds` of one run: 0 on the `local` backend (your own GPUs), else
 * the dated price table ({@link estimateCostUsd}) with your `prices` over it; null when the
 * GPU type has no price.
 */
export function runCostUsd(
  backend: string,
  gpuType: string,
  seconds: number,
  prices: Readonly<Record<string, number>> = {},
): number | null {
  if (backend === "local") return 0;
  return estimateCostUsd(gpuType, seconds, prices);
}

/** Use of `runs` runs of `seconds` each under `model`. */
export function runsUse(model: RunCostModel, runs: number, seconds: number): BudgetAmount {
  const cost = runCostUsd(model.backend, model.gpuType, seconds, model.prices);
  return {
    costUsd: cost === null ? null : cost * runs,
    gpuHours: (model.gpus * seconds * runs) / 3600,
  };
}

/** An estimate of a sweep against its caps, for `tmgg plan`. */
export interface BudgetEstimate {
  limit: { costUsd: number | null; gpuHours: number | null };
  /** Every run to run at its whole timeout. */
  worstCase: BudgetAmount;
  /** Every run to run at the mean duration of the stage's stored runs, when there are some. */
  expected: BudgetAmount | null;
  /** The mean duration used for `expected`. */
  meanDurationSeconds: number | null;
  /** Runs the caps allow in flight at once at their worst case (null: no cap). */
  runsAtOnce: number | null;
  /** True when the worst case passes a cap (the sweep may stop before the end). */
  mayStopEarly: boolean;
}

/**
 * Prices `runs` runs against the caps: worst case (runs × timeout × GPUs × price) and,
 * from `meanDurationSeconds` of stored runs, the expected spend.
 *
 * @example
 * estimateBudget({ maxCostUsd: 10 }, { backend: "modal", gpuType: "A10G", timeoutSeconds: 3600, gpus: 1 }, 24, 300)
 */
export function estimateBudget(
  limits: BudgetLimits,
  model: RunCostModel,
  runs: number,
  meanDurationSeconds?: number,
): BudgetEstimate {
  const worstCase = runsUse(model, runs, model.timeoutSeconds);
  const perRun = runsUse(model, 1, model.timeoutSeconds);
  const expected =
    meanDurationSeconds !== undefined && meanDurationSeconds > 0
      ? runsUse(model, runs, meanDurationSeconds)
      : null;
  const fits: number[] = [];
  if (limits.maxCostUsd !== undefined && perRun.costUsd !== null && perRun.costUsd > 0)
    fits.push(Math.floor(limits.maxCostUsd / perRun.costUsd + 1e-9));
  if (limits.maxGpuHours !== undefined && perRun.gpuHours > 0)
    fits.push(Math.floor(limits.maxGpuHours / perRun.gpuHours + 1e-9));
  const mayStopEarly =
    (limits.maxCostUsd !== undefined &&
      (worstCase.costUsd === null || worstCase.costUsd > limits.maxCostUsd)) ||
    (limits.maxGpuHours !== undefined && worstCase.gpuHours > limits.maxGpuHours);
  return {
    limit: { costUsd: limits.maxCostUsd ?? null, gpuHours: limits.maxGpuHours ?? null },
    worstCase,
    expected,
    meanDurationSeconds: expected === null ? null : (meanDurationSeconds ?? null),
    runsAtOnce: fits.length === 0 ? null : Math.min(...fits),
    mayStopEarly,
  };
}

/** A run's hold on the budget while it is in flight. */
export interface BudgetReservation {
  readonly worstCase: BudgetAmount;
  isSettled: boolean;
}

const TOLERANCE = 1e-9;

/**
 * Admits runs while the caps allow them at their worst case. Single-threaded use from the
 * coordinator's workers: `reserve` before starting a run, `settle` when it ends.
 *
 * @example
 * const guard = new BudgetGuard({ maxGpuHours: 2 }, { backend: "local", gpuType: "A10G", timeoutSeconds: 3600, gpus: 1 });
 * const hold = await guard.reserve(); // null once no run can start any more
 * guard.settle(hold!, 1800);          // the run used half an hour
 */
export class BudgetGuard {
  readonly limits: BudgetLimits;
  readonly model: RunCostModel;
  readonly #perRun: BudgetAmount;
  #spentCostUsd = 0;
  #spentGpuHours = 0;
  #heldCostUsd = 0;
  #heldGpuHours = 0;
  #inFlight = 0;
  #isStopped = false;
  #wake: Array<() => void> = [];

  constructor(limits: BudgetLimits, model: RunCostModel) {
    for (const [name, value] of Object.entries(limits)) {
      if (
        value !== undefined &&
        !(typeof value === "number" && value > 0 && Number.isFinite(value))
      )
        throw new RangeError(
          `[coordinator] ${name} must be a positive number, got ${String(value)}`,
        );
    }
    this.limits = limits;
    this.model = model;
    this.#perRun = runsUse(model, 1, model.timeoutSeconds);
    if (limits.maxCostUsd !== undefined && this.#perRun.costUsd === null) {
      throw new ConfigError(
        `[coordinator] max_cost_usd is set but gpu_type "${model.gpuType}" has no price in the table; pass your price per GPU-hour (gpuPricesUsdPerHour: { "${model.gpuType.split(":")[0]}": <usd> }) or use max_gpu_hours`,
        { key: "max_cost_usd" },
      );
    }
  }

  /** True when a cap is set. */
  get isLimited(): boolean {
    return this.limits.maxCostUsd !== undefined || this.limits.maxGpuHours !== undefined;
  }

  /** True once a run could not start for the caps (and none will start any more). */
  get isStopped(): boolean {
    return this.#isStopped;
  }

  /** Runs holding a reservation. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** What the runs that ended used (USD is null only when the cost cap is unset and unpriced). */
  get spent(): BudgetAmount {
    return {
      costUsd: this.#perRun.costUsd === null ? null : this.#spentCostUsd,
      gpuHours: this.#spentGpuHours,
    };
  }

  #fits(): boolean {
    const { maxCostUsd, maxGpuHours } = this.limits;
    const cost = this.#perRun.costUsd ?? 0;
    if (
      maxCostUsd !== undefined &&
      this.#spentCostUsd + this.#heldCostUsd + cost > maxCostUsd * (1 + TOLERANCE)
    )
      return false;
    if (
      maxGpuHours !== undefined &&
      this.#spentGpuHours + this.#heldGpuHours + this.#perRun.gpuHours >
        maxGpuHours * (1 + TOLERANCE)
    )
      return false;
    return true;
  }

  /**
   * Holds one run's worst case. Waits while runs in flight might leave room when they end;
   * null once no run can start (the caps are reached with nothing in flight) or `signal` aborts.
   */
  async reserve(signal?: AbortSignal): Promise<BudgetReservation | null> {
    for (;;) {
      if (signal?.aborted || this.#isStopped) return null;
      if (this.#fits()) {
        this.#heldCostUsd += this.#perRun.costUsd ?? 0;
        this.#heldGpuHours += this.#perRun.gpuHours;
        this.#inFlight++;
        return { worstCase: this.#perRun, isSettled: false };
      }
      if (this.#inFlight === 0) {
        this.#isStopped = true;
        this.#notify();
        return null;
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal?.removeEventListener("abort", done);
          resolve();
        };
        this.#wake.push(done);
        signal?.addEventListener("abort", done, { once: true });
      });
    }
  }

  /**
   * Ends a reservation: with the run's duration, that is what it used; with `undefined`,
   * the run never started and holds nothing.
   */
  settle(reservation: BudgetReservation, durationSeconds: number | undefined): void {
    if (reservation.isSettled) return;
    reservation.isSettled = true;
    this.#heldCostUsd -= reservation.worstCase.costUsd ?? 0;
    this.#heldGpuHours -= reservation.worstCase.gpuHours;
    this.#inFlight--;
    if (durationSeconds !== undefined) {
      const used = runsUse(this.model, 1, Math.max(0, durationSeconds));
      this.#spentCostUsd += used.costUsd ?? 0;
      this.#spentGpuHours += used.gpuHours;
    }
    this.#notify();
  }

  #notify(): void {
    const waiting = this.#wake;
    this.#wake = [];
    for (const wake of waiting) wake();
  }

  /** The StageResult's `budget`, with the runs left unstarted. */
  report(notStartedRuns: readonly string[], notStarted = notStartedRuns.length): BudgetReport {
    return {
      limit: { costUsd: this.limits.maxCostUsd ?? null, gpuHours: this.limits.maxGpuHours ?? null },
      spent: this.spent,
      stoppedEarly: this.#isStopped && notStarted > 0,
      notStarted,
      notStartedRuns: [...notStartedRuns],
    };
  }
}
