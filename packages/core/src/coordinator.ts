/**
 * ExperimentCoordinator (DESIGN.md section 5): plan, resume, run with bounded
 * parallelism, save every result the moment it ends, aggregate.
 *
 * Scaling out: a sweep may run one shard of a stage (`shard`), several sweeps of one stage
 * may run at once (each run is claimed with a lease in storage first, see run-lease.ts),
 * a budget caps what a sweep may start (budget.ts), and runs that failed for
 * infrastructure reasons are retried within the sweep (`max_retries`).
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { aggregateStage } from "./aggregate.ts";
import { BudgetGuard, gpusOfRun, type BudgetAmount, type BudgetReservation } from "./budget.ts";
import type { CloudRunner, ExperimentSpec, ProgressPoint } from "./cloud-runner.ts";
import type { CloudStorage } from "./cloud-storage.ts";
import { CONFIG_FILE, METRICS_FILE, runFolderFiles } from "./experiment-contract.ts";
import { estimateRunsCostUsd } from "./gpu-prices.ts";
import { StagePlanner, checkShard, shardOfRun, type PlannedRun } from "./plan.ts";
import { ResultStore } from "./result-store.ts";
import { DEFAULT_LEASE_SECONDS, RunLeases, defaultLeaseOwner, type RunLease } from "./run-lease.ts";
import { formatNumber } from "./report.ts";
import { shareOfLimits } from "./stage-budget.ts";
import { StudyScheduler } from "./study.ts";
import { canonicalJson } from "./run-id.ts";
import { CloudRunnerFactory } from "./runner-factory.ts";
import type { BudgetReport, ExperimentResult, Shard, StageConfig, StageResult } from "./schemas.ts";
import { createStorage } from "./storage-uri.ts";

/** What the coordinator reports while it works. */
export type CoordinatorEvent =
  | {
      type: "planned";
      stage: string;
      total: number;
      toRun: number;
      skipped: number;
      runIds: string[];
      /** The shard this sweep runs, when it runs one. */
      shard?: Shard;
    }
  | { type: "started"; runId: string }
  | { type: "progress"; runId: string; point: ProgressPoint }
  | {
      type: "finished";
      result: ExperimentResult;
      counts: {
        done: number;
        total: number;
        completed: number;
        failed: number;
        running: number;
        /** Runs left to other sweeps so far. */
        claimed: number;
      };
    }
  /**
   * A run left to another sweep: it held the run's lease (`reason: "lease"`, `owner` and
   * `expiresAt` of that lease), or it finished the run while this sweep was planning
   * (`reason: "finished"`). Not run here, not counted as failed.
   */
  | {
      type: "claimed";
      runId: string;
      reason: "lease" | "finished";
      owner: string | null;
      expiresAt: string | null;
    }
  /** A run found completed (by another sweep) when this one claimed it: reused, not run. */
  | { type: "skipped"; runId: string; result: ExperimentResult }
  /** A run failed for infrastructure reasons and runs again (`attempt` is the next one). */
  | { type: "retry"; runId: string; attempt: number; maxRetries: number; result: ExperimentResult }
  /** The budget stopped the sweep from starting more runs. */
  | {
      type: "budget";
      message: string;
      spent: BudgetAmount;
      limit: BudgetReport["limit"];
    }
  | { type: "warning"; message: string };

export interface CoordinatorOptions {
  /** A runner, or a backend name for CloudRunnerFactory (`local`, `modal`, …). */
  backend: CloudRunner | string;
  /** Options passed to the factory when `backend` is a name. */
  backendOptions?: Record<string, unknown>;
  /** A storage, or a URI (folder path or `s3://bucket/prefix`). */
  storage: CloudStorage | string;
  /** Where config paths resolve when a stage has no `config_dir`; default `exp_configs`. */
  baseConfigPath?: string;
  /** Local copies of remote results and runs' folders; default `./cache`. */
  cacheDir?: string;
  /** Folder the experiments run in; default `process.cwd()`. */
  projectRoot?: string;
  /** Commit the code is at, recorded in the StageResult. */
  commitSha?: string | null;
  /** Who this coordinator is in run leases; default `<host>:<pid>:<random>`. */
  leaseOwner?: string;
}

export interface RunStageOptions {
  /** Most runs in flight; default 4. */
  parallelism?: number;
  /** Skip runs whose stored result is `completed` for the same config; default true. */
  resume?: boolean;
  /** Aborting cancels every run in flight; a StageResult is still saved and returned. */
  signal?: AbortSignal;
  onEvent?: (event: CoordinatorEvent) => void;
  /** Overrides the stage's `gpu_type`. */
  gpuType?: string;
  /** Overrides the stage's `timeout_seconds`. */
  timeoutSeconds?: number;
  /** Also copy `checkpoints/` to storage (logs and metrics always go); default false. */
  uploadCheckpoints?: boolean;
  /** Your own USD per GPU-hour by GPU name, over the dated list prices, for the cost estimate. */
  gpuPricesUsdPerHour?: Readonly<Record<string, number>>;
  /**
   * Runs only this part of the stage: `{ index: 2, count: 4 }` is the second of four.
   * A grid's runs are split by a hash of their run id; a `num_trials` stage's studies
   * (architecture × dataset pairs) are dealt round-robin. The partial StageResult goes to
   * `stages/<stage>/shards/<index>-of-<count>.json`; `aggregateStoredStage` joins them.
   */
  shard?: Shard;
  /**
   * How long a claim on a run lasts without renewal; default 120. A sweep renews its
   * claims every third of it, and runs claimed by a sweep that died are free again after it.
   */
  leaseSeconds?: number;
  /** Overrides the stage's `max_cost_usd` (estimated USD; `local` runs cost 0). */
  maxCostUsd?: number;
  /** Overrides the stage's `max_gpu_hours` (GPUs × hours, every backend). */
  maxGpuHours?: number;
  /** Overrides the stage's `max_retries`: retries of runs that failed for infrastructure reasons. */
  maxRetries?: number;
  /**
   * GPUs one run holds, for GPU-hours; default the backend option `gpusPerExperiment` when
   * given, else from the GPU type (N of `TYPE:N`, 0 for `cpu`, else 1).
   */
  gpusPerRun?: number;
}

/** Plans what a run of the stage would do: every run, and which resume would skip. */
export interface StagePlan {
  /** Every run of a grid; for a study, the runs of the trials resumed from storage. */
  runs: PlannedRun[];
  /** Runs already completed for the same config, which resume skips. */
  skip: Set<string>;
  stored: Map<string, ExperimentResult>;
  /** Runs the stage holds in all: the grid's size, or trials x seeds x pairs of a study. */
  total: number;
  /** With `num_trials`: the study that asks for trials as slots free. */
  study?: StudyScheduler;
  /** The shard planned, when only one was. */
  shard?: Shard;
}

/** "max_cost_usd 10 and max_gpu_hours 4", for messages. */
function describeLimits(report: BudgetReport): string {
  const parts: string[] = [];
  if (report.limit.costUsd !== null)
    parts.push(`max_cost_usd ${formatNumber(report.limit.costUsd)}`);
  if (report.limit.gpuHours !== null)
    parts.push(`max_gpu_hours ${formatNumber(report.limit.gpuHours)}`);
  return parts.join(" or ");
}

/** True when two results are the same save of a run. */
function isSameSave(a: ExperimentResult, b: ExperimentResult | undefined): boolean {
  return (
    b !== undefined &&
    a.attempt === b.attempt &&
    a.startedAt === b.startedAt &&
    a.completedAt === b.completedAt &&
    a.status === b.status
  );
}

/** The value most runs have, or undefined for none. */
function mostCommon(values: readonly string[]): string | undefined {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
}

/** Run-folder files the result JSON already holds (`config`, `metrics`): not copied again. */
const IN_RESULT = new Set([CONFIG_FILE, METRICS_FILE]);

/**
 * Runs stages end to end.
 *
 * @example
 * const coordinator = new ExperimentCoordinator({ backend: "local", storage: "./results" });
 * const result = await coordinator.runStage(await StageConfig.fromYaml("stages/example.yaml"), {});
 */
export class ExperimentCoordinator {
  readonly options: CoordinatorOptions;
  /** This coordinator's name in run leases. */
  readonly leaseOwner: string;
  #runner: CloudRunner | undefined;
  #store: ResultStore | undefined;

  constructor(options: CoordinatorOptions) {
    this.options = options;
    this.leaseOwner = options.leaseOwner ?? defaultLeaseOwner();
  }

  /** The runner, created from the factory on first use when given by name. */
  async runner(): Promise<CloudRunner> {
    if (!this.#runner) {
      const { backend } = this.options;
      this.#runner =
        typeof backend === "string"
          ? await CloudRunnerFactory.create(backend, {
              cacheDir: this.options.cacheDir ?? "./cache",
              ...this.options.backendOptions,
            })
          : backend;
    }
    return this.#runner;
  }

  /** The results store, opened from the URI on first use when given as a string. */
  async store(): Promise<ResultStore> {
    if (!this.#store) {
      const { storage } = this.options;
      this.#store = new ResultStore(
        typeof storage === "string" ? await createStorage(storage) : storage,
      );
    }
    return this.#store;
  }

  #planner(stage: StageConfig, baseConfig: Record<string, unknown>): Promise<StagePlanner> {
    return StagePlanner.create(stage, {
      baseConfig,
      configDir: this.options.baseConfigPath ?? "exp_configs",
      projectRoot: this.options.projectRoot ?? process.cwd(),
    });
  }

  /**
   * What `runStage` would run and what resume would skip, without running anything; with
   * `shard`, only that shard's part of the stage.
   */
  async planStage(
    stage: StageConfig,
    baseConfig: Record<string, unknown> = {},
    options: { resume?: boolean; shard?: Shard | undefined } = {},
  ): Promise<StagePlan> {
    const shard = options.shard === undefined ? undefined : checkShard(options.shard);
    const planner = await this.#planner(stage, baseConfig);
    const stored =
      options.resume === false
        ? new Map<string, ExperimentResult>()
        : (await (await this.store()).loadRuns(stage.name)).runs;
    const withShard = shard ? { shard } : {};
    if (stage.numTrials !== undefined) {
      const study = new StudyScheduler(stage, planner, stored, withShard);
      const skip = new Set(study.reused().map((result) => result.runId));
      return { runs: study.runs(), skip, stored, total: study.total, study, ...withShard };
    }
    let runs = [...planner.grid()];
    if (shard) runs = runs.filter((run) => shardOfRun(run.runId, shard.count) === shard.index);
    const skip = new Set<string>();
    for (const run of runs) {
      const previous = stored.get(run.runId);
      if (
        previous?.status === "completed" &&
        canonicalJson(previous.config) === canonicalJson(run.config)
      ) {
        skip.add(run.runId);
      }
    }
    return { runs, skip, stored, total: runs.length, ...withShard };
  }

  /** Copies a run's folder to storage under a key unique to this attempt; returns its URI. */
  async #uploadArtifacts(
    stageName: string,
    result: ExperimentResult,
    withCheckpoints: boolean,
  ): Promise<string | null> {
    if (!result.logsPath) return null;
    const store = await this.store();
    const attemptKey = `${result.attempt}-${result.startedAt.replace(/[^0-9]/g, "").slice(0, 17)}`;
    const prefix = store.artifactsPrefix(stageName, result.runId, attemptKey);
    let uploaded = 0;
    for await (const file of runFolderFiles(result.logsPath, { checkpoints: withCheckpoints })) {
      const full = path.join(result.logsPath, file);
      if (IN_RESULT.has(file) || (await stat(full)).size === 0) continue;
      await store.storage.uploadFile(`${prefix}${file}`, full);
      uploaded++;
    }
    return uploaded > 0 ? `${store.storage.uri.replace(/\/$/, "")}/${prefix}` : null;
  }

  /** GPUs one run holds, for GPU-hours. */
  #gpusPerRun(gpuType: string, options: RunStageOptions): number {
    const fromBackend = this.options.backendOptions?.["gpusPerExperiment"];
    return gpusOfRun(
      gpuType,
      options.gpusPerRun ?? (typeof fromBackend === "number" ? fromBackend : undefined),
    );
  }

  /**
   * Runs a stage: plan, resume, claim each run, run with at most `parallelism` in flight,
   * save each result the moment it ends, then aggregate and save the StageResult.
   *
   * Each run is claimed with a lease in storage before it starts and re-checked after:
   * a run another sweep holds, or finished since this one planned, is left to it
   * (`claimed`), so shards and overlapping sweeps of one stage never run a run twice.
   * With a budget, a run starts only when the runs started could not pass it even if
   * every run in flight ran to its timeout; the others are reported as not started.
   */
  async runStage(
    stage: StageConfig,
    baseConfig: Record<string, unknown> = {},
    options: RunStageOptions = {},
  ): Promise<StageResult> {
    const startedAt = new Date().toISOString();
    const { parallelism = 4, resume = true, signal, onEvent } = options;
    if (!Number.isInteger(parallelism) || parallelism < 1) {
      throw new RangeError(
        `[coordinator] parallelism must be a positive integer, got ${parallelism}`,
      );
    }
    const maxRetries = options.maxRetries ?? stage.maxRetries ?? 0;
    if (!Number.isInteger(maxRetries) || maxRetries < 0) {
      throw new RangeError(
        `[coordinator] maxRetries must be a whole number >= 0, got ${maxRetries}`,
      );
    }
    const shard = options.shard === undefined ? undefined : checkShard(options.shard);
    const gpuType = options.gpuType ?? stage.gpuType;
    const timeoutSeconds = options.timeoutSeconds ?? stage.timeoutSeconds;
    const plan = await this.planStage(stage, baseConfig, { resume, shard });
    const runner = await this.runner();
    const store = await this.store();
    const leases = new RunLeases(store.storage, stage.name, {
      owner: this.leaseOwner,
      leaseSeconds: options.leaseSeconds ?? DEFAULT_LEASE_SECONDS,
    });
    // A shard gets its share of the stage's caps, so n shards together stay within them.
    const budget = new BudgetGuard(
      shareOfLimits(
        {
          maxCostUsd: options.maxCostUsd ?? stage.maxCostUsd,
          maxGpuHours: options.maxGpuHours ?? stage.maxGpuHours,
        },
        shard,
      ),
      {
        backend: runner.name,
        gpuType,
        timeoutSeconds,
        gpus: this.#gpusPerRun(gpuType, options),
        prices: options.gpuPricesUsdPerHour,
      },
    );
    // What storage held when this sweep began: a result that differs from it after a claim
    // was saved by another sweep running at the same time.
    const known = resume ? plan.stored : (await store.loadRuns(stage.name)).runs;
    const emit = (event: CoordinatorEvent): void => {
      try {
        onEvent?.(event);
      } catch {
        // a listener's failure never stops a sweep
      }
    };
    const warn = (message: string): void => emit({ type: "warning", message });

    const toRun = plan.runs.filter((run) => !plan.skip.has(run.runId));
    const { study } = plan;
    const gridRuns = toRun[Symbol.iterator]();
    const nextRun = (): PlannedRun | undefined => (study ? study.next() : gridRuns.next().value);
    emit({
      type: "planned",
      stage: stage.name,
      total: plan.total,
      toRun: plan.total - plan.skip.size,
      skipped: plan.skip.size,
      runIds: study ? [] : plan.runs.map((run) => run.runId),
      ...(shard ? { shard } : {}),
    });

    const results = new Map<string, ExperimentResult>();
    for (const runId of plan.skip) results.set(runId, plan.stored.get(runId)!);
    const skipped = new Set(plan.skip);
    const claimed = new Set<string>();
    const counts = {
      done: plan.skip.size,
      total: plan.total,
      completed: plan.skip.size,
      failed: 0,
      running: 0,
      claimed: 0,
    };

    /** Runs one attempt and saves its result (the commit point), then returns it. */
    const attemptRun = async (run: PlannedRun, attempt: number): Promise<ExperimentResult> => {
      const spec: ExperimentSpec = {
        runId: run.runId,
        config: run.config,
        command: stage.command,
        stage: stage.name,
        seed: run.seed,
        projectRoot: this.options.projectRoot ?? process.cwd(),
        objectiveMetric: stage.objective.metric,
        attempt,
      };
      counts.running++;
      let result: ExperimentResult;
      try {
        result = await runner.runExperiment(spec, {
          gpuType,
          timeoutSeconds,
          ...(signal ? { signal } : {}),
          onStart: (runId) => emit({ type: "started", runId }),
          onProgress: (runId, point) => emit({ type: "progress", runId, point }),
        });
      } catch (error) {
        const now = new Date().toISOString();
        result = {
          runId: run.runId,
          config: run.config,
          metrics: {},
          checkpointPath: null,
          status: signal?.aborted ? "cancelled" : "failed",
          errorMessage: `[coordinator] the ${runner.name} runner threw: ${(error as Error).message}`,
          durationSeconds: 0,
          startedAt: now,
          completedAt: now,
          attempt,
          backend: runner.name,
          gpuType,
          logsPath: null,
          failureKind: "infrastructure",
        };
      } finally {
        counts.running--;
      }
      if (run.trial !== undefined) result = { ...result, trial: run.trial };
      try {
        const artifacts = await this.#uploadArtifacts(
          stage.name,
          result,
          options.uploadCheckpoints ?? false,
        );
        if (artifacts) result = { ...result, logsPath: artifacts };
      } catch (error) {
        warn(`[coordinator] could not store the logs of ${run.runId}: ${(error as Error).message}`);
      }
      try {
        await store.saveRun(stage.name, result);
      } catch (error) {
        warn(
          `[coordinator] could not save the result of ${run.runId}: ${(error as Error).message}`,
        );
      }
      return result;
    };

    /** Leaves a run to another sweep. */
    const leave = (
      runId: string,
      reason: "lease" | "finished",
      owner: string | null,
      expiresAt: string | null,
    ): void => {
      claimed.add(runId);
      counts.claimed++;
      emit({ type: "claimed", runId, reason, owner, expiresAt });
    };

    /**
     * After winning the lease: a result saved since this sweep planned means another sweep
     * got there first. Returns true when the run must not run here.
     */
    const settledElsewhere = async (run: PlannedRun): Promise<boolean> => {
      let current: ExperimentResult | undefined;
      try {
        current = await store.loadRun(stage.name, run.runId);
      } catch (error) {
        warn((error as Error).message);
        return false;
      }
      if (!current) return false;
      const isNew = !isSameSave(current, known.get(run.runId));
      const isSameConfig = canonicalJson(current.config) === canonicalJson(run.config);
      if (current.status === "completed" && isSameConfig && (resume || isNew)) {
        results.set(run.runId, current);
        skipped.add(run.runId);
        study?.record(current);
        counts.done++;
        counts.completed++;
        emit({ type: "skipped", runId: run.runId, result: current });
        return true;
      }
      // Failed or timed out in another sweep during this one: the next sweep retries it.
      if (isNew && current.status !== "cancelled") {
        leave(run.runId, "finished", null, null);
        return true;
      }
      return false;
    };

    const runOne = async (run: PlannedRun, reservation: BudgetReservation): Promise<void> => {
      let lease: RunLease;
      try {
        const claim = await leases.claim(run.runId);
        if (!claim.isClaimed) {
          budget.settle(reservation, undefined);
          leave(run.runId, "lease", claim.holder?.owner ?? null, claim.holder?.expiresAt ?? null);
          return;
        }
        lease = claim.lease;
      } catch (error) {
        budget.settle(reservation, undefined);
        const now = new Date().toISOString();
        const result: ExperimentResult = {
          runId: run.runId,
          config: run.config,
          metrics: {},
          checkpointPath: null,
          status: "failed",
          errorMessage: `[coordinator] could not claim run ${run.runId} in ${store.storage.uri}: ${(error as Error).message}; check the storage and run the stage again`,
          durationSeconds: 0,
          startedAt: now,
          completedAt: now,
          attempt: (plan.stored.get(run.runId)?.attempt ?? 0) + 1,
          backend: runner.name,
          gpuType,
          logsPath: null,
          failureKind: "infrastructure",
        };
        results.set(run.runId, result);
        study?.record(result);
        counts.done++;
        counts.failed++;
        emit({ type: "finished", result, counts: { ...counts } });
        return;
      }
      lease.keepAlive(warn);
      let result: ExperimentResult | undefined;
      try {
        if (await settledElsewhere(run)) {
          budget.settle(reservation, undefined);
          return;
        }
        let attempt = (plan.stored.get(run.runId)?.attempt ?? 0) + 1;
        let hold: BudgetReservation | null = reservation;
        for (let retry = 0; hold; retry++) {
          result = await attemptRun(run, attempt);
          budget.settle(hold, result.durationSeconds);
          hold = null;
          const isRetryable =
            result.status === "failed" &&
            result.failureKind === "infrastructure" &&
            retry < maxRetries &&
            !signal?.aborted;
          if (!isRetryable) break;
          emit({ type: "retry", runId: run.runId, attempt: attempt + 1, maxRetries, result });
          hold = await budget.reserve(signal);
          attempt++;
        }
      } finally {
        try {
          await lease.release();
        } catch (error) {
          warn(
            `[coordinator] could not release the lease on ${run.runId} (${lease.key}); it expires by itself: ${(error as Error).message}`,
          );
        }
      }
      if (!result) return;
      results.set(run.runId, result);
      study?.record(result);
      counts.done++;
      if (result.status === "completed") counts.completed++;
      else counts.failed++;
      emit({ type: "finished", result, counts: { ...counts } });
    };

    const worker = async (): Promise<void> => {
      while (!signal?.aborted) {
        const reservation = await budget.reserve(signal);
        if (!reservation) return;
        const run = signal?.aborted ? undefined : nextRun();
        if (!run) {
          budget.settle(reservation, undefined);
          return;
        }
        await runOne(run, reservation);
      }
    };
    await Promise.all(Array.from({ length: parallelism }, worker));

    const isBudgetStop = budget.isStopped && !signal?.aborted;
    const cancelledAt = new Date().toISOString();
    const planned = study ? study.runs() : plan.runs;
    const notStartedRuns: string[] = [];
    const experiments: ExperimentResult[] = [];
    for (const run of planned) {
      if (claimed.has(run.runId)) continue;
      const result = results.get(run.runId) ?? study?.result(run.runId);
      if (result) experiments.push(result);
      else if (isBudgetStop) notStartedRuns.push(run.runId);
      else
        experiments.push({
          runId: run.runId,
          config: run.config,
          metrics: {},
          checkpointPath: null,
          status: "cancelled",
          errorMessage: "cancelled before it started",
          durationSeconds: 0,
          startedAt: cancelledAt,
          completedAt: cancelledAt,
          attempt: plan.stored.get(run.runId)?.attempt ?? 1,
          backend: runner.name,
          gpuType,
          logsPath: null,
        });
    }
    // A study's trials never asked for have no run ids yet.
    const notStarted =
      notStartedRuns.length + (study && isBudgetStop ? study.total - planned.length : 0);
    if (isBudgetStop && notStarted > 0) {
      const report = budget.report(notStartedRuns, notStarted);
      emit({
        type: "budget",
        message: `[coordinator] budget reached: ${notStarted} runs not started (the next run could pass ${describeLimits(report)} at its ${timeoutSeconds} s timeout)`,
        spent: budget.spent,
        limit: report.limit,
      });
    }
    const stageResult = aggregateStage({
      stageName: stage.name,
      experiments,
      objective: stage.objective,
      paramKeys: Object.keys(stage.hyperparameterSpace),
      planned: new Map(planned.map((run) => [run.runId, run])),
      startedAt,
      skipped: skipped.size,
      commitSha: this.options.commitSha ?? null,
      backend: runner.name,
      gpuType,
      estimatedCostUsd: estimateRunsCostUsd(experiments, options.gpuPricesUsdPerHour),
      ...(study ? { trials: study.trials() } : {}),
      ...(shard ? { shard } : {}),
      ...(claimed.size > 0 ? { claimedRuns: [...claimed] } : {}),
      ...(budget.isLimited ? { budget: budget.report(notStartedRuns, notStarted) } : {}),
    });
    if (shard) await store.saveShardResult({ ...stageResult, shard });
    else await store.saveStageResult(stageResult);
    return stageResult;
  }

  /**
   * Gathers every stored run of the stage's current plan into one StageResult, saves it as
   * the stage's `stage_result.json` and returns it: how the shards of a sharded sweep (and
   * any sweeps that overlapped) are joined. Runs not run yet are listed in `missingRuns`.
   *
   * @example
   * const result = await coordinator.aggregateStoredStage(stage, baseConfig);
   */
  async aggregateStoredStage(
    stage: StageConfig,
    baseConfig: Record<string, unknown> = {},
    options: Pick<RunStageOptions, "gpuPricesUsdPerHour"> = {},
  ): Promise<StageResult> {
    const plan = await this.planStage(stage, baseConfig, { resume: true });
    const store = await this.store();
    const planned = plan.study ? plan.study.runs() : plan.runs;
    const experiments: ExperimentResult[] = [];
    const missingRuns: string[] = [];
    for (const run of planned) {
      const stored = plan.stored.get(run.runId);
      if (stored && canonicalJson(stored.config) === canonicalJson(run.config))
        experiments.push(stored);
      else missingRuns.push(run.runId);
    }
    const shards = await store.loadShardResults(stage.name);
    const newest = [...shards].sort((a, b) => b.completedAt.localeCompare(a.completedAt))[0];
    const current = shards.filter((result) => result.shard?.count === newest?.shard?.count);
    const times = [...current, ...experiments].map((result) => result.startedAt).sort();
    const budgets = current.flatMap((result) => (result.budget ? [result.budget] : []));
    const sum = (values: Array<number | null>): number | null =>
      values.some((value) => value === null)
        ? null
        : values.reduce<number>((total, value) => total + (value ?? 0), 0);
    const stillMissing = new Set(missingRuns);
    const budget: BudgetReport | undefined =
      budgets.length === 0
        ? undefined
        : {
            limit: {
              costUsd: sum(budgets.map((b) => b.limit.costUsd)),
              gpuHours: sum(budgets.map((b) => b.limit.gpuHours)),
            },
            spent: {
              costUsd: sum(budgets.map((b) => b.spent.costUsd)),
              gpuHours: sum(budgets.map((b) => b.spent.gpuHours)),
            },
            stoppedEarly: budgets.some((b) => b.stoppedEarly),
            notStarted: budgets
              .flatMap((b) => b.notStartedRuns)
              .filter((runId) => stillMissing.has(runId)).length,
            notStartedRuns: budgets
              .flatMap((b) => b.notStartedRuns)
              .filter((runId) => stillMissing.has(runId)),
          };
    const result = aggregateStage({
      stageName: stage.name,
      experiments,
      objective: stage.objective,
      paramKeys: Object.keys(stage.hyperparameterSpace),
      planned: new Map(planned.map((run) => [run.runId, run])),
      startedAt: times[0] ?? new Date().toISOString(),
      skipped: 0,
      commitSha: this.options.commitSha ?? current.find((r) => r.commitSha)?.commitSha ?? null,
      backend: mostCommon(experiments.map((e) => e.backend)) ?? newest?.backend ?? "unknown",
      gpuType: mostCommon(experiments.map((e) => e.gpuType)) ?? newest?.gpuType ?? stage.gpuType,
      estimatedCostUsd: estimateRunsCostUsd(experiments, options.gpuPricesUsdPerHour),
      ...(plan.study ? { trials: plan.study.trials() } : {}),
      ...(missingRuns.length > 0 ? { missingRuns } : {}),
      ...(budget ? { budget } : {}),
    });
    await store.saveStageResult(result);
    return result;
  }

  /** Releases the runner and the storage. */
  async close(): Promise<void> {
    await this.#runner?.close?.();
    await this.#store?.storage.close?.();
  }
}
