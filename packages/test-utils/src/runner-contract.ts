import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  experimentResultSchema,
  type CloudRunner,
  type ExperimentResult,
  type ExperimentSpec,
  type ProgressPoint,
} from "@tmgg/core";
import { FAKE_BEHAVIOUR_KEY, type FakeBehaviour } from "./fake-runner.ts";

/** Absolute path of the fixture experiment: `node <path>` acts out the spec's `config.fake`. */
export const EXPERIMENT_FIXTURE = fileURLToPath(new URL("./experiment-fixture.ts", import.meta.url));

/** What one implementation gives the runner contract suite. */
export interface RunnerContractContext {
  /** A fresh runner; the suite talks to it only through the CloudRunner interface. */
  runner: CloudRunner;
  /**
   * The argv of an experiment that acts out `behaviour`. The suite also puts the
   * behaviour in the spec's `config.fake`, so a runner may read it from either.
   */
  command: (behaviour: FakeBehaviour) => readonly string[];
  /** `projectRoot` of every spec; default: the spec's own default. */
  projectRoot?: string;
  /**
   * How many runs the runner runs at once, when it has such a limit: runs past it wait
   * as `pending`. Omit when it has none (the pending checks are then left out).
   */
  slots?: number;
  /** Whether results carry a `logsPath` folder with the run's logs, metrics and checkpoints. Default false. */
  hasLogs?: boolean;
  /** Whether `onProgress` reports the experiment's `metrics.jsonl` lines. Default true. */
  reportsProgress?: boolean;
  /** How long a timed-out or cancelled run may take to end; default 5000 ms. */
  endWithinMs?: number;
  /** Releases what setup made (temp dirs, servers); the suite closes the runner first. */
  cleanup: () => Promise<void>;
}

const OUT_OF_MEMORY = "RuntimeError: CUDA out of memory (fake)";

/**
 * The CloudRunner contract: one suite that every runner and every fake passes, so
 * fakes cannot drift from the real thing. `setup` runs before each test.
 *
 * @example
 * runnerContract("FakeRunner", async () => ({
 *   runner: new FakeRunner({ slots: 2 }),
 *   command: () => ["unused"],
 *   slots: 2,
 *   cleanup: async () => {},
 * }));
 */
export function runnerContract(name: string, setup: () => Promise<RunnerContractContext>): void {
  describe(`CloudRunner contract: ${name}`, () => {
    let context: RunnerContractContext;

    beforeEach(async () => {
      context = await setup();
    });

    afterEach(async () => {
      await context.runner.close?.();
      await context.cleanup();
    });

    const spec = (label: string, behaviour: FakeBehaviour, extra: Partial<ExperimentSpec> = {}): ExperimentSpec => ({
      runId: `${label}-${randomUUID().slice(0, 8)}`,
      config: { learning_rate: 0.001, seed: 1, [FAKE_BEHAVIOUR_KEY]: behaviour },
      command: context.command(behaviour),
      stage: "contract",
      ...(context.projectRoot === undefined ? {} : { projectRoot: context.projectRoot }),
      ...extra,
    });
    const endWithinMs = (): number => context.endWithinMs ?? 5000;
    const started = (runId: string, starts: string[]): Promise<void> => waitFor(() => starts.includes(runId), 10_000);

    it("completes a run that writes its objective metric, recording timings, backend, attempt and gpu type", async () => {
      const starts: string[] = [];
      const experiment = spec("completes", { durationMs: 100, metrics: { val_loss: 0.25, accuracy: 0.9 } }, { attempt: 2 });
      const before = Date.now();
      const result = await context.runner.runExperiment(experiment, {
        gpuType: "T4",
        timeoutSeconds: 30,
        onStart: (runId) => starts.push(runId),
      });
      const after = Date.now();

      expect(result.errorMessage).toBeNull();
      expect(result.status).toBe("completed");
      expect(result.metrics).toEqual({ val_loss: 0.25, accuracy: 0.9 });
      expect(result.runId).toBe(experiment.runId);
      expect(result.config).toEqual(experiment.config);
      expect(result.backend).toBe(context.runner.name);
      expect(result.attempt).toBe(2);
      expect(result.gpuType).toBe("T4");
      expect(starts).toEqual([experiment.runId]);
      expect(experimentResultSchema.parse(result)).toEqual(result);
      const startedAt = Date.parse(result.startedAt);
      const completedAt = Date.parse(result.completedAt);
      expect(new Date(startedAt).toISOString()).toBe(result.startedAt);
      expect(new Date(completedAt).toISOString()).toBe(result.completedAt);
      expect(startedAt).toBeGreaterThanOrEqual(before - 1000);
      expect(completedAt).toBeGreaterThanOrEqual(startedAt);
      expect(completedAt).toBeLessThanOrEqual(after + 1000);
      expect(result.durationSeconds).toBeGreaterThanOrEqual(0.09);
      expect(result.durationSeconds).toBeLessThanOrEqual((after - before) / 1000 + 0.01);
    });

    it("counts the spec's own objective metric", async () => {
      const result = await context.runner.runExperiment(
        spec("objective", { metrics: { accuracy: 0.75 } }, { objectiveMetric: "accuracy" }),
      );
      expect(result.status).toBe("completed");
      expect(result.metrics).toEqual({ accuracy: 0.75 });
    });

    it("reports the progress lines the experiment appends", async (testContext) => {
      if (context.reportsProgress === false) testContext.skip();
      const points: Array<[string, ProgressPoint]> = [];
      const progress = [
        { step: 1, val_loss: 0.9 },
        { step: 2, val_loss: 0.5 },
      ];
      const experiment = spec("progress", { durationMs: 50, progress, metrics: { val_loss: 0.5 } });
      const result = await context.runner.runExperiment(experiment, {
        onProgress: (runId, point) => points.push([runId, point]),
      });
      expect(result.status).toBe("completed");
      expect(points).toEqual(progress.map((point) => [experiment.runId, point]));
    });

    it("fails a run that exits non-zero, with the tail of its stderr in the error message", async () => {
      const noise = Array.from({ length: 2000 }, (_, i) => `noise line ${i}`).join("\n");
      const result = await context.runner.runExperiment(
        spec("crashes", { exitCode: 3, stderr: `${noise}\n${OUT_OF_MEMORY}\n`, metrics: { val_loss: 1 } }),
      );
      expect(result.status).toBe("failed");
      expect(result.errorMessage).toContain("3");
      expect(result.errorMessage).toContain(OUT_OF_MEMORY);
      expect(result.errorMessage).not.toContain("noise line 0\n");
      expect(result.errorMessage!.length).toBeLessThan(20_000);
    });

    it("fails a run that exits 0 without the objective metric, naming the metric", async () => {
      const result = await context.runner.runExperiment(spec("no-objective", { metrics: { accuracy: 0.5 } }));
      expect(result.status).toBe("failed");
      expect(result.errorMessage).toMatch(/val_loss/);
      expect(result.metrics).toEqual({ accuracy: 0.5 });
    });

    it("ends a run past its timeout as timeout, within a bounded time", async () => {
      const experiment = spec("times-out", { durationMs: 60_000, metrics: { val_loss: 1 } });
      const before = Date.now();
      const result = await context.runner.runExperiment(experiment, { timeoutSeconds: 0.5 });
      const elapsedMs = Date.now() - before;
      expect(result.status).toBe("timeout");
      expect(result.errorMessage).toMatch(/timed out/);
      expect(elapsedMs).toBeGreaterThanOrEqual(450);
      expect(elapsedMs).toBeLessThan(500 + endWithinMs());
      expect(await context.runner.getStatus(experiment.runId)).toBe("timeout");
    });

    it("cancels a running run: cancel returns true and the run ends as cancelled", async () => {
      const starts: string[] = [];
      const experiment = spec("cancelled", { durationMs: 60_000, metrics: { val_loss: 1 } });
      const running = context.runner.runExperiment(experiment, { onStart: (runId) => starts.push(runId) });
      await started(experiment.runId, starts);
      expect(await context.runner.getStatus(experiment.runId)).toBe("running");

      const before = Date.now();
      expect(await context.runner.cancel(experiment.runId)).toBe(true);
      const result = await running;
      expect(Date.now() - before).toBeLessThan(endWithinMs());
      expect(result.status).toBe("cancelled");
      expect(await context.runner.getStatus(experiment.runId)).toBe("cancelled");
      expect(await context.runner.cancel(experiment.runId)).toBe(false);
    });

    it("answers cancel of an unknown run with false", async () => {
      expect(await context.runner.cancel(`never-started-${randomUUID().slice(0, 8)}`)).toBe(false);
    });

    it("cancels a running run when its signal is aborted", async () => {
      const starts: string[] = [];
      const controller = new AbortController();
      const experiment = spec("aborted", { durationMs: 60_000, metrics: { val_loss: 1 } });
      const running = context.runner.runExperiment(experiment, {
        signal: controller.signal,
        onStart: (runId) => starts.push(runId),
      });
      await started(experiment.runId, starts);
      const before = Date.now();
      controller.abort();
      const result = await running;
      expect(Date.now() - before).toBeLessThan(endWithinMs());
      expect(result.status).toBe("cancelled");
    });

    it("cancels a run whose signal is already aborted without starting it", async () => {
      const starts: string[] = [];
      const result = await context.runner.runExperiment(spec("pre-aborted", { metrics: { val_loss: 1 } }), {
        signal: AbortSignal.abort(),
        onStart: (runId) => starts.push(runId),
      });
      expect(result.status).toBe("cancelled");
      expect(starts).toEqual([]);
    });

    it("answers getStatus with unknown, running, then the final status", async () => {
      const starts: string[] = [];
      const experiment = spec("status", { durationMs: 300, metrics: { val_loss: 1 } });
      expect(await context.runner.getStatus(experiment.runId)).toBe("unknown");
      const running = context.runner.runExperiment(experiment, { onStart: (runId) => starts.push(runId) });
      await started(experiment.runId, starts);
      expect(await context.runner.getStatus(experiment.runId)).toBe("running");
      expect((await running).status).toBe("completed");
      expect(await context.runner.getStatus(experiment.runId)).toBe("completed");

      const failing = spec("status-failed", { exitCode: 1 });
      await context.runner.runExperiment(failing);
      expect(await context.runner.getStatus(failing.runId)).toBe("failed");
    });

    it("holds runs past its slots as pending, and cancelling one ends it as cancelled without starting", async (testContext) => {
      const { slots } = context;
      if (slots === undefined) return testContext.skip();
      const starts: string[] = [];
      const onStart = (runId: string): void => {
        starts.push(runId);
      };
      const busy = Array.from({ length: slots }, (_, i) => spec(`busy-${i}`, { durationMs: 60_000 }));
      const waiting = spec("waiting", { metrics: { val_loss: 1 } });
      const running = busy.map((experiment) => context.runner.runExperiment(experiment, { onStart }));
      for (const experiment of busy) await started(experiment.runId, starts);
      const pending = context.runner.runExperiment(waiting, { onStart });
      await waitFor(async () => (await context.runner.getStatus(waiting.runId)) === "pending", 5000);

      expect(await context.runner.cancel(waiting.runId)).toBe(true);
      const result = await pending;
      expect(result.status).toBe("cancelled");
      expect(starts).not.toContain(waiting.runId);
      expect(await context.runner.getStatus(waiting.runId)).toBe("cancelled");

      for (const experiment of busy) expect(await context.runner.cancel(experiment.runId)).toBe(true);
      for (const result of await Promise.all(running)) expect(result.status).toBe("cancelled");
    });

    it("runs a sweep with at most `parallelism` runs in flight and returns every result in order", async () => {
      const parallelism = Math.min(2, context.slots ?? 2);
      const experiments = Array.from({ length: 6 }, (_, i) =>
        spec(`sweep-${i}`, { durationMs: 150, metrics: { val_loss: i } }),
      );
      let inFlight = 0;
      let maxInFlight = 0;
      const results = await context.runner.runSweep(experiments, {
        parallelism,
        onStart: () => {
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
        },
        onResult: () => {
          inFlight -= 1;
        },
      });
      expect(maxInFlight).toBe(parallelism);
      expect(results.map((result) => result.runId)).toEqual(experiments.map((experiment) => experiment.runId));
      expect(results.map((result) => result.status)).toEqual(experiments.map(() => "completed"));
      expect(results.map((result) => result.metrics["val_loss"])).toEqual([0, 1, 2, 3, 4, 5]);
    });

    it("keeps running a sweep's other runs when one fails", async () => {
      const experiments = [
        spec("ok-a", { durationMs: 50, metrics: { val_loss: 1 } }),
        spec("fails", { exitCode: 1, stderr: `${OUT_OF_MEMORY}\n` }),
        spec("ok-b", { durationMs: 50, metrics: { val_loss: 2 } }),
        spec("ok-c", { durationMs: 50, metrics: { val_loss: 3 } }),
      ];
      const seen: ExperimentResult[] = [];
      const results = await context.runner.runSweep(experiments, {
        parallelism: 2,
        onResult: (result) => {
          seen.push(result);
        },
      });
      expect(results.map((result) => result.status)).toEqual(["completed", "failed", "completed", "completed"]);
      expect(results[1]!.errorMessage).toContain(OUT_OF_MEMORY);
      expect(seen).toHaveLength(4);
    });

    it("ends every run of a sweep as cancelled when its signal is aborted", async () => {
      const parallelism = Math.min(2, context.slots ?? 2);
      const controller = new AbortController();
      const experiments = Array.from({ length: 4 }, (_, i) => spec(`abort-sweep-${i}`, { durationMs: 60_000 }));
      const starts: string[] = [];
      const sweep = context.runner.runSweep(experiments, {
        parallelism,
        signal: controller.signal,
        onStart: (runId) => starts.push(runId),
      });
      await waitFor(() => starts.length === parallelism, 10_000);
      const before = Date.now();
      controller.abort();
      const results = await sweep;
      expect(Date.now() - before).toBeLessThan(2 * endWithinMs());
      expect(results.map((result) => result.status)).toEqual(["cancelled", "cancelled", "cancelled", "cancelled"]);
      expect(starts).toHaveLength(parallelism);
    });

    it("keeps the run's logs, metrics and checkpoints in logsPath", async (testContext) => {
      if (context.hasLogs !== true) return testContext.skip();
      const result = await context.runner.runExperiment(
        spec("logs", {
          stdout: "hello from stdout\n",
          stderr: "hello from stderr\n",
          checkpoint: true,
          progress: [{ step: 1, val_loss: 0.5 }],
          metrics: { val_loss: 0.5 },
        }),
      );
      expect(result.status).toBe("completed");
      const logsPath = result.logsPath!;
      expect(readFileSync(path.join(logsPath, "stdout.log"), "utf8")).toContain("hello from stdout");
      expect(readFileSync(path.join(logsPath, "stderr.log"), "utf8")).toContain("hello from stderr");
      expect(JSON.parse(readFileSync(path.join(logsPath, "metrics.json"), "utf8"))).toEqual({ val_loss: 0.5 });
      expect(readFileSync(path.join(logsPath, "metrics.jsonl"), "utf8")).toContain('"step":1');
      expect(result.checkpointPath).not.toBeNull();
      expect(readdirSync(result.checkpointPath!)).toContain("model.ckpt");

      const bare = await context.runner.runExperiment(spec("no-checkpoints", { metrics: { val_loss: 0.5 } }));
      expect(bare.checkpointPath).toBeNull();
      expect(existsSync(path.join(bare.logsPath!, "stdout.log"))).toBe(true);
    });
  });
}

/** Polls `condition` every 10 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`waitFor: condition still false after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
