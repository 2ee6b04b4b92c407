import {
  BaseCloudRunner,
  judgeOutcome,
  resolveSpec,
  type ExperimentResult,
  type ExperimentSpec,
  type Metrics,
  type RunOptions,
  type RunStatus,
} from "@tmgg/core";

/** What a fake experiment does: how long it takes and how it ends. */
export interface FakeBehaviour {
  durationMs?: number;
  metrics?: Metrics;
  exitCode?: number;
  stderr?: string;
}

export interface FakeRunnerOptions {
  /** Decides each run's behaviour; default: 5 ms, exit 0, `val_loss` from the config's `learning_rate` and seed. */
  behave?: (spec: ExperimentSpec) => FakeBehaviour;
}

function defaultBehaviour(spec: ExperimentSpec): FakeBehaviour {
  const lr = typeof spec.config["learning_rate"] === "number" ? spec.config["learning_rate"] : 0.01;
  const seed = typeof spec.config["seed"] === "number" ? spec.config["seed"] : 0;
  const valLoss = Math.abs(Math.log10(lr) + 3) + 0.01 * seed;
  return { durationMs: 5, metrics: { val_loss: valLoss, test_loss: valLoss * 1.1 } };
}

/**
 * An in-memory CloudRunner: no processes, timings by timer. It counts every start per
 * run id (`starts`) so tests can prove nothing ran twice. Passes the runner contract suite.
 */
export class FakeRunner extends BaseCloudRunner {
  readonly name = "fake";
  /** Starts per run id. */
  readonly starts = new Map<string, number>();
  readonly #behave: (spec: ExperimentSpec) => FakeBehaviour;
  readonly #status = new Map<string, RunStatus>();
  readonly #cancels = new Map<string, () => void>();

  constructor(options: FakeRunnerOptions = {}) {
    super();
    this.#behave = options.behave ?? defaultBehaviour;
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
    const behaviour = { ...defaultBehaviour(experiment), ...this.#behave(experiment) };
    const startedAt = new Date();
    this.#status.set(spec.runId, "running");
    this.starts.set(spec.runId, (this.starts.get(spec.runId) ?? 0) + 1);
    options.onStart?.(spec.runId);

    const ending = await new Promise<"done" | "timeout" | "cancelled">((resolve) => {
      const done = setTimeout(() => finish("done"), behaviour.durationMs ?? 5);
      const timeout = setTimeout(() => finish("timeout"), timeoutSeconds * 1000);
      const onAbort = (): void => finish("cancelled");
      const finish = (how: "done" | "timeout" | "cancelled"): void => {
        clearTimeout(done);
        clearTimeout(timeout);
        signal?.removeEventListener("abort", onAbort);
        this.#cancels.delete(spec.runId);
        resolve(how);
      };
      if (signal?.aborted) return finish("cancelled");
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#cancels.set(spec.runId, onAbort);
    });

    const outcome = judgeOutcome({
      exitCode: ending === "done" ? (behaviour.exitCode ?? 0) : null,
      timedOut: ending === "timeout",
      cancelled: ending === "cancelled",
      timeoutSeconds,
      stderrTail: behaviour.stderr ?? "",
      metrics: ending === "done" ? { metrics: behaviour.metrics ?? {} } : { metrics: {} },
      objectiveMetric: spec.objectiveMetric,
    });
    const completedAt = new Date();
    this.#status.set(spec.runId, outcome.status);
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
