/**
 * A CloudRunner that passes everything to another and remembers where each run's local
 * folder was (the coordinator then replaces `logsPath` with the storage location), so
 * the artifact can carry the logs of the runs this job ran.
 */
import type {
  CloudRunner,
  ExperimentResult,
  ExperimentSpec,
  RunOptions,
  RunStatus,
  SweepOptions,
} from "@tmgg/core";

export class RecordingRunner implements CloudRunner {
  readonly name: string;
  /** runId → the run's local folder, for runs that ended in this process. */
  readonly localFolders = new Map<string, string>();
  readonly inner: CloudRunner;

  constructor(inner: CloudRunner) {
    this.inner = inner;
    this.name = inner.name;
  }

  async runExperiment(experiment: ExperimentSpec, options?: RunOptions): Promise<ExperimentResult> {
    const result = await this.inner.runExperiment(experiment, options);
    if (result.logsPath) this.localFolders.set(result.runId, result.logsPath);
    return result;
  }

  async runSweep(
    experiments: readonly ExperimentSpec[],
    options?: SweepOptions,
  ): Promise<ExperimentResult[]> {
    const results = await this.inner.runSweep(experiments, options);
    for (const result of results)
      if (result.logsPath) this.localFolders.set(result.runId, result.logsPath);
    return results;
  }

  getStatus(runId: string): Promise<RunStatus> {
    return this.inner.getStatus(runId);
  }

  cancel(runId: string): Promise<boolean> {
    return this.inner.cancel(runId);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
