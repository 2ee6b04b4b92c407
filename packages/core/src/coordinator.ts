/**
 * ExperimentCoordinator (DESIGN.md section 5): plan, resume, run with bounded
 * parallelism, save every result the moment it ends, aggregate.
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { aggregateStage } from "./aggregate.ts";
import type { CloudRunner, ExperimentSpec, ProgressPoint } from "./cloud-runner.ts";
import type { CloudStorage } from "./cloud-storage.ts";
import { CHECKPOINTS_DIR } from "./experiment-contract.ts";
import { estimateRunsCostUsd } from "./gpu-prices.ts";
import { StagePlanner, type PlannedRun } from "./plan.ts";
import { ResultStore } from "./result-store.ts";
import { StudyScheduler } from "./study.ts";
import { canonicalJson } from "./run-id.ts";
import { CloudRunnerFactory } from "./runner-factory.ts";
import type { ExperimentResult, StageConfig, StageResult } from "./schemas.ts";
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
    }
  | { type: "started"; runId: string }
  | { type: "progress"; runId: string; point: ProgressPoint }
  | {
      type: "finished";
      result: ExperimentResult;
      counts: { done: number; total: number; completed: number; failed: number; running: number };
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
}

async function* walkFiles(dir: string, prefix = ""): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) yield* walkFiles(path.join(dir, entry.name), relative);
    else if (entry.isFile()) yield relative;
  }
}

/**
 * Runs stages end to end.
 *
 * @example
 * const coordinator = new ExperimentCoordinator({ backend: "local", storage: "./results" });
 * const result = await coordinator.runStage(await StageConfig.fromYaml("stages/example.yaml"), {});
 */
export class ExperimentCoordinator {
  readonly options: CoordinatorOptions;
  #runner: CloudRunner | undefined;
  #store: ResultStore | undefined;

  constructor(options: CoordinatorOptions) {
    this.options = options;
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

  /** What `runStage` would run and what resume would skip, without running anything. */
  async planStage(
    stage: StageConfig,
    baseConfig: Record<string, unknown> = {},
    options: { resume?: boolean } = {},
  ): Promise<StagePlan> {
    const planner = await this.#planner(stage, baseConfig);
    const stored =
      options.resume === false
        ? new Map<string, ExperimentResult>()
        : (await (await this.store()).loadRuns(stage.name)).runs;
    if (stage.numTrials !== undefined) {
      const study = new StudyScheduler(stage, planner, stored);
      const skip = new Set(study.reused().map((result) => result.runId));
      return { runs: study.runs(), skip, stored, total: study.total, study };
    }
    const runs = [...planner.grid()];
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
    return { runs, skip, stored, total: runs.length };
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
    for await (const file of walkFiles(result.logsPath)) {
      if (!withCheckpoints && (file === CHECKPOINTS_DIR || file.startsWith(`${CHECKPOINTS_DIR}/`)))
        continue;
      await store.storage.uploadFile(`${prefix}${file}`, path.join(result.logsPath, file));
      uploaded++;
    }
    return uploaded > 0 ? `${store.storage.uri.replace(/\/$/, "")}/${prefix}` : null;
  }

  /**
   * Runs a stage: plan, resume, run with at most `parallelism` in flight, save each
   * result the moment it ends, then aggregate and save the StageResult.
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
    const gpuType = options.gpuType ?? stage.gpuType;
    const timeoutSeconds = options.timeoutSeconds ?? stage.timeoutSeconds;
    const plan = await this.planStage(stage, baseConfig, { resume });
    const runner = await this.runner();
    const store = await this.store();
    const emit = (event: CoordinatorEvent): void => {
      try {
        onEvent?.(event);
      } catch {
        // a listener's failure never stops a sweep
      }
    };

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
    });

    const results = new Map<string, ExperimentResult>();
    for (const runId of plan.skip) results.set(runId, plan.stored.get(runId)!);
    const counts = {
      done: plan.skip.size,
      total: plan.total,
      completed: plan.skip.size,
      failed: 0,
      running: 0,
    };
    const runOne = async (run: PlannedRun): Promise<void> => {
      const previous = plan.stored.get(run.runId);
      const spec: ExperimentSpec = {
        runId: run.runId,
        config: run.config,
        command: stage.command,
        stage: stage.name,
        seed: run.seed,
        projectRoot: this.options.projectRoot ?? process.cwd(),
        objectiveMetric: stage.objective.metric,
        attempt: (previous?.attempt ?? 0) + 1,
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
          attempt: spec.attempt ?? 1,
          backend: runner.name,
          gpuType,
          logsPath: null,
          failureKind: "infrastructure",
        };
      } finally {
        counts.running--;
      }
      try {
        const artifacts = await this.#uploadArtifacts(
          stage.name,
          result,
          options.uploadCheckpoints ?? false,
        );
        if (artifacts) result = { ...result, logsPath: artifacts };
      } catch (error) {
        emit({
          type: "warning",
          message: `[coordinator] could not store the logs of ${run.runId}: ${(error as Error).message}`,
        });
      }
      try {
        await store.saveRun(stage.name, result);
      } catch (error) {
        emit({
          type: "warning",
          message: `[coordinator] could not save the result of ${run.runId}: ${(error as Error).message}`,
        });
      }
      results.set(run.runId, result);
      study?.record(result);
      counts.done++;
      if (result.status === "completed") counts.completed++;
      else counts.failed++;
      emit({ type: "finished", result, counts: { ...counts } });
    };

    const worker = async (): Promise<void> => {
      for (
        let run = signal?.aborted ? undefined : nextRun();
        run;
        run = signal?.aborted ? undefined : nextRun()
      ) {
        await runOne(run);
      }
    };
    await Promise.all(Array.from({ length: parallelism }, worker));

    const cancelledAt = new Date().toISOString();
    const experiments = (study ? study.runs() : plan.runs).map(
      (run): ExperimentResult =>
        results.get(run.runId) ??
        study?.result(run.runId) ?? {
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
        },
    );
    const stageResult = aggregateStage({
      stageName: stage.name,
      experiments,
      objective: stage.objective,
      paramKeys: Object.keys(stage.hyperparameterSpace),
      startedAt,
      skipped: plan.skip.size,
      commitSha: this.options.commitSha ?? null,
      backend: runner.name,
      gpuType,
      estimatedCostUsd: estimateRunsCostUsd(experiments, options.gpuPricesUsdPerHour),
      ...(study ? { trials: study.trials() } : {}),
    });
    await store.saveStageResult(stageResult);
    return stageResult;
  }

  /** Releases the runner and the storage. */
  async close(): Promise<void> {
    await this.#runner?.close?.();
    await this.#store?.storage.close?.();
  }
}
