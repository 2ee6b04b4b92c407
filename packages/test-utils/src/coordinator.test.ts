import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import {
  ExperimentCoordinator,
  LocalStorage,
  ResultStore,
  groupResults,
  parseStageConfig,
  rankGroups,
  type CoordinatorEvent,
} from "@tmgg/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GRID24_STAGE, makeConfigProject } from "./config-project.ts";
import { FakeRunner } from "./fake-runner.ts";

let root: string;

beforeEach(async () => {
  root = await makeConfigProject("tmgg-coord-");
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function coordinator(runner: FakeRunner): ExperimentCoordinator {
  return new ExperimentCoordinator({
    backend: runner,
    storage: path.join(root, "results"),
    projectRoot: root,
  });
}

describe("ExperimentCoordinator.runStage", () => {
  it("completes a 24-run grid killed half way and resumed, running none twice", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    const runner = new FakeRunner({ behave: () => ({ durationMs: 15 }) });
    const controller = new AbortController();
    let finished = 0;
    const first = await coordinator(runner).runStage(
      stage,
      {},
      {
        parallelism: 4,
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === "finished" && ++finished === 12) controller.abort();
        },
      },
    );
    expect(first.summary.totalExperiments).toBe(24);
    expect(first.summary.cancelled).toBeGreaterThan(0);
    expect(first.summary.completed).toBeGreaterThanOrEqual(12);
    expect(first.summary.completed + first.summary.cancelled).toBe(24);
    const saved = await new ResultStore(
      new LocalStorage(path.join(root, "results")),
    ).loadStageResult("grid24");
    expect(saved?.summary.cancelled).toBe(first.summary.cancelled);

    const startsAfterFirst = runner.totalStarts;
    const second = await coordinator(runner).runStage(stage, {}, { parallelism: 4 });
    expect(second.summary).toMatchObject({
      totalExperiments: 24,
      completed: 24,
      skipped: first.summary.completed,
    });
    const completedFirst = first.experiments
      .filter((e) => e.status === "completed")
      .map((e) => e.runId);
    for (const id of completedFirst) expect(runner.starts.get(id)).toBe(1);
    // the resume starts exactly the runs that had not completed
    expect(runner.totalStarts - startsAfterFirst).toBe(24 - first.summary.completed);
    expect(second.groups).toHaveLength(8);
    expect(second.groups.every((g) => g.n === 3)).toBe(true);
  });

  it("saves each result the moment its run ends", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    const store = new ResultStore(new LocalStorage(path.join(root, "results")));
    const seen: string[] = [];
    const checks: Promise<void>[] = [];
    await coordinator(new FakeRunner()).runStage(
      stage,
      {},
      {
        onEvent: (event) => {
          if (event.type !== "finished") return;
          checks.push(
            store.loadRun("grid24", event.result.runId).then((stored) => {
              if (stored?.status === "completed") seen.push(stored.runId);
            }),
          );
        },
      },
    );
    await Promise.all(checks);
    expect(seen).toHaveLength(24);
  });

  it("never stops for one failure and re-runs failed runs on resume", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    const failing = new FakeRunner({
      behave: (spec) =>
        spec.config["seed"] === 2 && spec.config["architecture"] === "models/gnn"
          ? { exitCode: 3, stderr: "CUDA out of memory" }
          : {},
    });
    const first = await coordinator(failing).runStage(stage, {}, { parallelism: 3 });
    expect(first.summary).toMatchObject({ completed: 20, failed: 4 });
    const failure = first.experiments.find((e) => e.status === "failed")!;
    expect(failure.errorMessage).toContain("CUDA out of memory");

    const healthy = new FakeRunner();
    const second = await coordinator(healthy).runStage(stage, {}, { parallelism: 3 });
    expect(second.summary).toMatchObject({ completed: 24, skipped: 20 });
    expect(healthy.totalStarts).toBe(4);
    const retried = second.experiments.find((e) => e.runId === failure.runId)!;
    expect(retried.attempt).toBe(2);
  });

  it("keeps at most `parallelism` runs in flight and reports events in order", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    let inFlight = 0;
    let most = 0;
    const events: CoordinatorEvent["type"][] = [];
    await coordinator(new FakeRunner({ behave: () => ({ durationMs: 10 }) })).runStage(
      stage,
      {},
      {
        parallelism: 5,
        onEvent: (event) => {
          events.push(event.type);
          if (event.type === "started") most = Math.max(most, ++inFlight);
          if (event.type === "finished") inFlight--;
        },
      },
    );
    expect(most).toBe(5);
    expect(events[0]).toBe("planned");
    expect(events.filter((e) => e === "finished")).toHaveLength(24);
  });

  it("groups the runs as their configs would, taking the groups from the plan", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    const result = await coordinator(new FakeRunner()).runStage(stage);
    const fromConfigs = groupResults(result.experiments, Object.keys(stage.hyperparameterSpace));
    expect(result.groups).toHaveLength(8);
    expect(result.groups).toEqual(rankGroups(fromConfigs, stage.objective));
    const stored = await coordinator(new FakeRunner()).aggregateStoredStage(stage);
    expect(stored.groups).toEqual(result.groups);
  });

  it("runs everything again with resume off", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    const runner = new FakeRunner();
    await coordinator(runner).runStage(stage);
    const again = await coordinator(runner).runStage(stage, {}, { resume: false });
    expect(again.summary.skipped).toBe(0);
    expect(runner.totalStarts).toBe(48);
  });

  it("re-runs a stored completed run whose config changed", async () => {
    const stage = parseStageConfig(GRID24_STAGE);
    const runner = new FakeRunner();
    await coordinator(runner).runStage(stage);
    const store = new ResultStore(new LocalStorage(path.join(root, "results")));
    const { runs } = await store.loadRuns("grid24");
    const [id, result] = [...runs][0]!;
    await store.saveRun("grid24", { ...result, config: { ...result.config, tampered: true } });
    const again = await coordinator(runner).runStage(stage);
    expect(again.summary.skipped).toBe(23);
    expect(runner.starts.get(id)).toBe(2);
    const file = await readFile(
      path.join(root, "results/stages/grid24/runs", `${id}.json`),
      "utf8",
    );
    expect(file).toContain('"run_id"');
    expect(file).toContain('"duration_seconds"');
  });
});
