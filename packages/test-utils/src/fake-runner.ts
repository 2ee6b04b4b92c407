import {
  BaseCloudRunner,
  TailBuffer,
  judgeOutcome,
  resolveSpec,
  type ExperimentResult,
  type ExperimentSpec,
  type Metrics,
  type ProgressPoint,
  type RunOptions,
  type RunStatus,
} from "@tmgg/core";

/**
 * What a fake experiment does: how long it takes and how it ends. The FakeRunner acts
 * out the first fields; the fixture experiment (`experiment-fixture.ts`), which real
 * runners start as a child process, acts out all of them. Put it in a spec's
 * `config.fake` so every runner can act it out.
 */
export interface FakeBehaviour {
  /** How long the experiment runs before it writes its metrics and exits. */
  durationMs?: number;
  /** Written to `metrics.json` at the end; nothing is written when absent. */
  metrics?: Metrics;
  /** Exit code; default 0. */
  exitCode?: number;
  /** Printed to stderr at the start. */
  stderr?: string;
  /** Appended to `metrics.jsonl`, one line each, at the start. */
  progress?: ProgressPoint[];
  /** Printed to stdout at the start. */
  stdout?: string;
  /** (fixture) Each progress line is written in two halves this many ms apart, to test readers of partial lines. */
  progressPauseMs?: number;
  /** (fixture) Grandchild processes to fork; they sleep until killed. Their pids go to `pids.json` in the run folder. */
  grandchildren?: number;
  /** (fixture) The experiment and its grandchildren ignore SIGTERM, so only SIGKILL ends them. */
  ignoreSigterm?: boolean;
  /** (fixture) Bytes of filler to print to stdout, in 1 MiB lines. */
  printBytes?: number;
  /** (fixture) Writes `checkpoints/model.ckpt` in the run folder. */
  checkpoint?: boolean;
  /**
   * (fixture) Writes `contract.json` in the run folder: argv, cwd, the TMGG_* and
   * CUDA_VISIBLE_DEVICES env, the env vars named in `recordEnv`, the run folder's
   * listing at start (`runDirAtStart`), start and end times (`startedAtMs`, `endedAtMs`).
   */
  recordContract?: boolean;
  /** (fixture) Extra env var names to record in `contract.json`. */
  recordEnv?: string[];
}

/** The key of an experiment's config that holds its FakeBehaviour. */
export const FAKE_BEHAVIOUR_KEY = "fake";

export interface FakeRunnerOptions {
  /**
   * Decides each run's behaviour, on top of `config.fake` and the default (5 ms, exit 0,
   * `val_loss` from the config's `learning_rate` and seed).
   */
  behave?: (spec: ExperimentSpec) => FakeBehaviour;
  /** Most runs running at once; the others wait as `pending`. Default: no limit. */
  slots?: number;
}

function defaultBehaviour(spec: ExperimentSpec): FakeBehaviour {
  const lr = typeof spec.config["learning_rate"] === "number" ? spec.config["learning_rate"] : 0.01;
  const seed = typeof spec.config["seed"] === "number" ? spec.config["seed"] : 0;
  const valLoss = Math.abs(Math.log10(lr) + 3) + 0.01 * seed;
  return { durationMs: 5, metrics: { val_loss: valLoss, test_loss: valLoss * 1.1 } };
}

function configBehaviour(spec: ExperimentSpec): FakeBehaviour {
  const raw = spec.config[FAKE_BEHAVIOUR_KEY];
  return raw !== null && typeof raw === "object" && !Array.isArray(raw) ? raw : {};
}

type Ending = "done" | "timeout" | "cancelled";

/**
 * An in-memory CloudRunner: no processes, timings by timer. It counts every start per
 * run id (`starts`) so tests can prove nothing ran twice. Passes the runner contract suite.
 */
export class FakeRunner extends BaseCloudRunner {
  readonly name = "fake";
  /** Starts per run id. */
  readonly starts = new Map<string, number>();
  readonly #behave: ((spec: ExperimentSpec) => FakeBehaviour) | undefined;
  readonly #slots: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  readonly #status = new Map<string, RunStatus>();
  readonly #cancels = new Map<string, () => void>();

  constructor(options: FakeRunnerOptions = {}) {
    super();
    this.#behave = options.behave;
    this.#slots = options.slots ?? Number.POSITIVE_INFINITY;
  }

  /** Total starts over all runs. */
  get totalStarts(): number {
    let total = 0;
    for (const n of this.starts.values()) total += n;
    return total;
  }

  async runExperiment(experiment: ExperimentSpec, options: RunOptions = {}): Promise<ExperimentResult> {
    const spec = resolveSpec(experiment);
    const { gpuType = "standard", timeoutSeconds = 3600, signal } = options;
    const behaviour: FakeBehaviour = {
      ...defaultBehaviour(experiment),
      ...configBehaviour(experiment),
      ...this.#behave?.(experiment),
    };
    const queuedAt = new Date();
    let cancelled = signal?.aborted === true;
    let cancelWait: (() => void) | undefined;
    const onAbortWhileWaiting = (): void => {
      cancelled = true;
      cancelWait?.();
    };

    if (!cancelled && this.#running >= this.#slots) {
      this.#status.set(spec.runId, "pending");
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          cancelWait = undefined;
          this.#cancels.delete(spec.runId);
          signal?.removeEventListener("abort", onAbortWhileWaiting);
          resolve();
        };
        cancelWait = () => {
          const index = this.#waiting.indexOf(wake);
          if (index >= 0) this.#waiting.splice(index, 1);
          wake();
        };
        this.#waiting.push(wake);
        this.#cancels.set(spec.runId, onAbortWhileWaiting);
        signal?.addEventListener("abort", onAbortWhileWaiting, { once: true });
      });
    }
    if (cancelled) {
      this.#status.set(spec.runId, "cancelled");
      return this.#result(spec, gpuType, queuedAt, "cancelled", behaviour, timeoutSeconds);
    }

    this.#running += 1;
    const startedAt = new Date();
    this.#status.set(spec.runId, "running");
    this.starts.set(spec.runId, (this.starts.get(spec.runId) ?? 0) + 1);
    options.onStart?.(spec.runId);
    for (const point of behaviour.progress ?? []) options.onProgress?.(spec.runId, point);

    const ending = await new Promise<Ending>((resolve) => {
      const done = setTimeout(() => finish("done"), behaviour.durationMs ?? 5);
      const timeout = setTimeout(() => finish("timeout"), timeoutSeconds * 1000);
      const onAbort = (): void => finish("cancelled");
      const finish = (how: Ending): void => {
        clearTimeout(done);
        clearTimeout(timeout);
        signal?.removeEventListener("abort", onAbort);
        this.#cancels.delete(spec.runId);
        resolve(how);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#cancels.set(spec.runId, onAbort);
    });

    this.#running -= 1;
    this.#waiting.shift()?.();
    const result = this.#result(spec, gpuType, startedAt, ending, behaviour, timeoutSeconds);
    this.#status.set(spec.runId, result.status);
    return result;
  }

  #result(
    spec: ReturnType<typeof resolveSpec>,
    gpuType: string,
    startedAt: Date,
    ending: Ending,
    behaviour: FakeBehaviour,
    timeoutSeconds: number,
  ): ExperimentResult {
    const stderrTail = new TailBuffer();
    stderrTail.push(behaviour.stderr ?? "");
    const outcome = judgeOutcome({
      exitCode: ending === "done" ? (behaviour.exitCode ?? 0) : null,
      timedOut: ending === "timeout",
      cancelled: ending === "cancelled",
      timeoutSeconds,
      stderrTail: stderrTail.toString(),
      metrics: ending === "done" ? { metrics: behaviour.metrics ?? {} } : { metrics: {} },
      objectiveMetric: spec.objectiveMetric,
    });
    const completedAt = new Date();
    return {
      runId: spec.runId,
      config: spec.config,
      metrics: outcome.metrics,
      checkpointPath: null,
      status: outcome.status,
      errorMessage: outcome.errorMessage,
      durationSeconds: (completedAt.getTime() - startedAt.getTime()) / 1000,
      startedAt: startedAt.toISOString(),
      completedAt: completedAt.toISOString(),
      attempt: spec.attempt,
      backend: this.name,
      gpuType,
      logsPath: null,
    };
  }

  getStatus(runId: string): Promise<RunStatus> {
    return Promise.resolve(this.#status.get(runId) ?? "unknown");
  }

  cancel(runId: string): Promise<boolean> {
    const cancel = this.#cancels.get(runId);
    cancel?.();
    return Promise.resolve(cancel !== undefined);
  }
}
