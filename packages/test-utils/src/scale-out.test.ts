import { rm } from "node:fs/promises";
import path from "node:path";
import {
  ExperimentCoordinator,
  LocalStorage,
  ResultStore,
  RunLeases,
  parseStageConfig,
  renderText,
  type CoordinatorEvent,
} from "@tmgg/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GRID24_STAGE, makeConfigProject } from "./config-project.ts";
import { FakeRunner } from "./fake-runner.ts";

let root: string;

beforeEach(async () => {
  root = await makeConfigProject("tmgg-scale-");
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function storage(): LocalStorage {
  return new LocalStorage(path.join(root, "results"));
}

function coordinator(runner: FakeRunner, leaseOwner?: string): ExperimentCoordinator {
  return new ExperimentCoordinator({
    backend: runner,
    storage: storage(),
    projectRoot: root,
    ...(leaseOwner ? { leaseOwner } : {}),
  });
}

/** Starts per run over several runners. */
function startsOf(...runners: FakeRunner[]): Map<string, number> {
  const starts = new Map<string, number>();
  for (const runner of runners)
    for (const [id, n] of runner.starts) starts.set(id, (starts.get(id) ?? 0) + n);
  return starts;
}

describe("retries of infrastructure failures", () => {
  it("retries a run whose runner threw, up to max_retries, recording each attempt", async () => {
    const stage = parseStageConfig(`${GRID24_STAGE}max_retries: 2\n`);
    const flaky = new Set<string>();
    const runner = new FakeRunner({
      behave: (spec) => {
        // one run's machine is lost twice, then it runs
        if (spec.config["seed"] === 1 && spec.config["learning_rate"] === 0.001) {
          const key = `${spec.runId}#${spec.attempt}`;
          if ((spec.attempt ?? 1) < 3 && !flaky.has(key)) {
            flaky.add(key);
            throw new Error("sandbox lost: the worker was preempted");
          }
        }
        return {};
      },
    });
    const retries: Extract<CoordinatorEvent, { type: "retry" }>[] = [];
    const result = await coordinator(runner).runStage(
      stage,
      {},
      { onEvent: (event) => event.type === "retry" && retries.push(event) },
    );
    expect(result.summary).toMatchObject({ totalExperiments: 24, completed: 24, failed: 0 });
    // 2 architectures x 2 depths have seed 1 at learning rate 0.001: 4 runs, each retried twice
    expect(retries).toHaveLength(8);
    expect(retries.map((r) => r.attempt).sort()).toEqual([2, 2, 2, 2, 3, 3, 3, 3]);
    expect(retries[0]!.result).toMatchObject({
      status: "failed",
      failureKind: "infrastructure",
    });
    expect(retries[0]!.result.errorMessage).toContain("sandbox lost");
    const retried = result.experiments.filter((e) => e.attempt === 3);
    expect(retried).toHaveLength(4);
    const stored = await new ResultStore(storage()).loadRun("grid24", retried[0]!.runId);
    expect(stored).toMatchObject({ status: "completed", attempt: 3 });
  });

  it("never retries an experiment's own failure, and gives up after max_retries", async () => {
    const stage = parseStageConfig(`${GRID24_STAGE}max_retries: 3\n`);
    const runner = new FakeRunner({
      behave: (spec) => {
        if (spec.config["architecture"] !== "models/gnn" || spec.config["seed"] !== 2) return {};
        if (spec.config["learning_rate"] === 0.001) throw new Error("no capacity for A10G");
        return { exitCode: 1, stderr: "RuntimeError: CUDA out of memory" };
      },
    });
    const result = await coordinator(runner).runStage(stage, {}, { parallelism: 3 });
    expect(result.summary).toMatchObject({ completed: 20, failed: 4 });
    const failures = result.experiments.filter((e) => e.status === "failed");
    const infra = failures.filter((e) => e.failureKind === "infrastructure");
    const own = failures.filter((e) => e.failureKind !== "infrastructure");
    expect(infra.map((e) => e.attempt)).toEqual([4, 4]);
    expect(own.map((e) => e.attempt)).toEqual([1, 1]);
    for (const e of own) expect(runner.starts.get(e.runId)).toBe(1);
  });

  it("retries nothing by default", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    const runner = new FakeRunner({
      behave: (spec) => {
        if (spec.config["seed"] === 3) throw new Error("connection reset");
        return {};
      },
    });
    const result = await coordinator(runner).runStage(stage);
    expect(result.summary.failed).toBe(8);
    expect(result.experiments.every((e) => e.attempt === 1)).toBe(true);
  });
});

describe("leases", () => {
  it("leaves a run whose lease another live sweep holds: not run, not failed, counted as claimed", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    const plan = await coordinator(new FakeRunner()).planStage(stage);
    const held = plan.runs[5]!.runId;
    const other = await new RunLeases(storage(), "grid24", { owner: "gpu-box-2:77:abc" }).claim(
      held,
    );
    expect(other.isClaimed).toBe(true);
    const runner = new FakeRunner();
    const events: CoordinatorEvent[] = [];
    const result = await coordinator(runner).runStage(
      stage,
      {},
      { onEvent: (e) => events.push(e) },
    );
    expect(runner.starts.has(held)).toBe(false);
    expect(result.summary).toMatchObject({ totalExperiments: 23, completed: 23, claimed: 1 });
    expect(result.claimedRuns).toEqual([held]);
    expect(events).toContainEqual(
      expect.objectContaining({ type: "claimed", runId: held, owner: "gpu-box-2:77:abc" }),
    );
    expect(renderText(result)).toContain("1 run was claimed by another sweep");
    // every lease this sweep took is gone; the other sweep's is still there
    expect(await storage().list("stages/grid24/leases/")).toEqual([
      `stages/grid24/leases/${held}.00000001.json`,
    ]);
  });

  it("takes over a run whose lease expired (its sweep died) and runs it", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    const plan = await coordinator(new FakeRunner()).planStage(stage);
    const orphan = plan.runs[0]!.runId;
    await new RunLeases(storage(), "grid24", {
      owner: "killed",
      leaseSeconds: 30,
      now: () => Date.now() - 60_000,
    }).claim(orphan);
    const runner = new FakeRunner();
    const result = await coordinator(runner).runStage(stage);
    expect(result.summary.completed).toBe(24);
    expect(runner.starts.get(orphan)).toBe(1);
    expect(await storage().list("stages/grid24/leases/")).toEqual([]);
  });

  it("runs every run exactly once when two sweeps of one stage run at the same time", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    const a = new FakeRunner({ behave: () => ({ durationMs: 20 }) });
    const b = new FakeRunner({ behave: () => ({ durationMs: 20 }) });
    const [ra, rb] = await Promise.all([
      coordinator(a, "sweep-a").runStage(stage, {}, { parallelism: 3 }),
      coordinator(b, "sweep-b").runStage(stage, {}, { parallelism: 3 }),
    ]);
    const starts = startsOf(a, b);
    expect(starts.size).toBe(24);
    expect([...starts.values()].every((n) => n === 1)).toBe(true);
    // each run is either in a sweep's result or left by it to the other
    for (const result of [ra, rb]) {
      expect(result.summary.totalExperiments + (result.summary.claimed ?? 0)).toBe(24);
      expect(result.summary.failed).toBe(0);
    }
    expect(a.totalStarts).toBeGreaterThan(0);
    expect(b.totalStarts).toBeGreaterThan(0);
  });
});

describe("shards", () => {
  it("runs a stage as 3 shards that cover it exactly once, and joins them from storage", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    const runners = [new FakeRunner(), new FakeRunner(), new FakeRunner()];
    const parts = await Promise.all(
      runners.map((runner, i) =>
        coordinator(runner).runStage(stage, {}, { shard: { index: i + 1, count: 3 } }),
      ),
    );
    const starts = startsOf(...runners);
    expect(starts.size).toBe(24);
    expect([...starts.values()].every((n) => n === 1)).toBe(true);
    expect(parts.map((p) => p.shard)).toEqual([
      { index: 1, count: 3 },
      { index: 2, count: 3 },
      { index: 3, count: 3 },
    ]);
    expect(parts.reduce((n, p) => n + p.summary.totalExperiments, 0)).toBe(24);
    const store = new ResultStore(storage());
    expect(await store.loadStageResult("grid24")).toBeUndefined();
    expect(await storage().list("stages/grid24/shards/")).toEqual([
      "stages/grid24/shards/1-of-3.json",
      "stages/grid24/shards/2-of-3.json",
      "stages/grid24/shards/3-of-3.json",
    ]);

    const joined = await coordinator(new FakeRunner()).aggregateStoredStage(stage);
    expect(joined.summary).toMatchObject({ totalExperiments: 24, completed: 24 });
    expect(joined.groups).toHaveLength(8);
    expect(joined.missingRuns).toBeUndefined();
    expect(joined.shard).toBeUndefined();
    expect((await store.loadStageResult("grid24"))?.summary.completed).toBe(24);
  });

  it("lists the runs no shard has stored yet when joining", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    const part = await coordinator(new FakeRunner()).runStage(
      stage,
      {},
      { shard: { index: 2, count: 3 } },
    );
    const joined = await coordinator(new FakeRunner()).aggregateStoredStage(stage);
    expect(joined.summary.totalExperiments).toBe(part.summary.totalExperiments);
    expect(joined.missingRuns).toHaveLength(24 - part.summary.totalExperiments);
    expect(renderText(joined)).toMatch(/runs of the plan have no result yet/);
  });
});

describe("budgets", () => {
  it("stops starting runs at max_gpu_hours and reports the runs it did not start", async () => {
    // Each run holds 1 GPU for at most its 1 s timeout and really takes 0.25 s; the cap
    // is 2.5 GPU-seconds, so runs start while spent + 1 s (the new run) + in flight <= 2.5 s.
    const cap = 2.5 / 3600;
    const stage = parseStageConfig(
      `${GRID24_STAGE}gpu_type: A10G\ntimeout_seconds: 1\nmax_gpu_hours: ${cap}\n`,
    );
    const runner = new FakeRunner({ behave: () => ({ durationMs: 250 }) });
    const events: CoordinatorEvent[] = [];
    const result = await coordinator(runner).runStage(
      stage,
      {},
      { parallelism: 2, onEvent: (e) => events.push(e) },
    );
    const budget = result.budget!;
    expect(budget.stoppedEarly).toBe(true);
    expect(budget.limit).toEqual({ costUsd: null, gpuHours: cap });
    const started = runner.totalStarts;
    expect(started).toBeGreaterThanOrEqual(1);
    expect(started).toBeLessThan(24);
    expect(budget.notStarted).toBe(24 - started);
    expect(budget.notStartedRuns).toHaveLength(24 - started);
    // spent within the cap, and the next run at its timeout would have passed it
    expect(budget.spent.gpuHours! * 3600).toBeLessThanOrEqual(2.5 + 1e-6);
    expect(budget.spent.gpuHours! * 3600 + 1).toBeGreaterThan(2.5);
    // a backend other than local is priced at the table: A10G at $1.10 per GPU-hour
    expect(budget.spent.costUsd).toBeCloseTo(budget.spent.gpuHours! * 1.1, 9);
    expect(result.summary.totalExperiments).toBe(started);
    expect(result.summary.cancelled).toBe(0);
    const { runs } = await new ResultStore(storage()).loadRuns("grid24");
    for (const id of budget.notStartedRuns) expect(runs.has(id)).toBe(false);
    expect(events.filter((e) => e.type === "budget")).toHaveLength(1);
    expect(renderText(result)).toMatch(
      new RegExp(`budget reached: ${24 - started} runs not started`),
    );
  });
});
