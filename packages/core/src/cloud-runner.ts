import type { ExperimentResult, ExperimentStatus } from "./schemas.ts";

/** One experiment as a runner receives it (DESIGN.md section 4). */
export interface ExperimentSpec {
  /** Deterministic id derived from the resolved config. */
  runId: string;
  /** The resolved config; written to `config.json` in the run folder. */
  config: Record<string, unknown>;
  /** argv of the experiment, with `{config}`, `{run_dir}`, `{run_id}`, `{seed}`, `{overrides}` placeholders. */
  command: readonly string[];
  /** Stage name (env `TMGG_STAGE`); default `adhoc`. */
  stage?: string;
  /** Seed (env `TMGG_SEED`); default `config.seed` or 0. */
  seed?: number;
  /** Folder the command runs in (and, for remote runners, the code shipped); default `process.cwd()`. */
  projectRoot?: string;
  /** Metric that must be in `metrics.json` for the run to count as completed; default `val_loss`. */
  objectiveMetric?: string;
  /** Attempt number, recorded in the result; default 1. */
  attempt?: number;
}

/** One line an experiment appended to `metrics.jsonl`. */
export type ProgressPoint = Record<string, number>;

export interface RunOptions {
  /** GPU type (`standard`, `A10G`, `H100:2`, …); default `standard`. */
  gpuType?: string;
  /** Wall-clock limit; the run ends as `timeout` past it. Default 3600. */
  timeoutSeconds?: number;
  /** Aborting it cancels the run, which then ends as `cancelled`. */
  signal?: AbortSignal;
  /** Called with each progress line the experiment appends to `metrics.jsonl`, where the runner can see them. */
  onProgress?: (runId: string, point: ProgressPoint) => void;
  /** Called once the run has actually started (after waiting for a slot or a machine). */
  onStart?: (runId: string) => void;
}

export interface SweepOptions extends RunOptions {
  /** Most runs in flight at once; default 4. */
  parallelism?: number;
  /** Called with each result the moment its run ends. */
  onResult?: (result: ExperimentResult) => void | Promise<void>;
}

/** What `getStatus` answers. */
export type RunStatus = "pending" | "running" | ExperimentStatus | "unknown";

/**
 * A backend that runs experiments (the original module's CloudRunner, camelCased).
 * Results carry `logsPath`: a local folder holding the run's `stdout.log`, `stderr.log`,
 * `metrics.json`, `metrics.jsonl` and `checkpoints/` once the run has ended.
 */
export interface CloudRunner {
  /** Backend name recorded in results (`local`, `modal`, …). */
  readonly name: string;
  runExperiment(experiment: ExperimentSpec, options?: RunOptions): Promise<ExperimentResult>;
  runSweep(
    experiments: readonly ExperimentSpec[],
    options?: SweepOptions,
  ): Promise<ExperimentResult[]>;
  getStatus(runId: string): Promise<RunStatus>;
  /** Cancels a pending or running run; false when there was nothing to cancel. */
  cancel(runId: string): Promise<boolean>;
  /** Releases what the runner holds (connections, machines). Optional. */
  close?(): Promise<void>;
}

/**
 * Base class: a backend writes `runExperiment`, `getStatus` and `cancel`, and gets
 * `runSweep` with bounded concurrency for free.
 */
export abstract class BaseCloudRunner implements CloudRunner {
  abstract readonly name: string;
  abstract runExperiment(
    experiment: ExperimentSpec,
    options?: RunOptions,
  ): Promise<ExperimentResult>;
  abstract getStatus(runId: string): Promise<RunStatus>;
  abstract cancel(runId: string): Promise<boolean>;

  /**
   * Runs every experiment with at most `parallelism` in flight; one failure never stops
   * the others. Results come back in the order of `experiments`.
   */
  async runSweep(
    experiments: readonly ExperimentSpec[],
    options: SweepOptions = {},
  ): Promise<ExperimentResult[]> {
    const { parallelism = 4, onResult, ...runOptions } = options;
    if (!Number.isInteger(parallelism) || parallelism < 1) {
      throw new RangeError(
        `[${this.name}] parallelism must be a positive integer, got ${parallelism}`,
      );
    }
    const results = new Array<ExperimentResult>(experiments.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < experiments.length) {
        const index = next++;
        const result = await this.runExperiment(experiments[index]!, runOptions);
        results[index] = result;
        await onResult?.(result);
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallelism, experiments.length) }, worker));
    return results;
  }
}
