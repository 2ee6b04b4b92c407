import { rm } from "node:fs/promises";
import path from "node:path";
import {
  ExperimentCoordinator,
  groupResults,
  parseStageConfig,
  rankGroups,
  renderMarkdown,
  renderText,
} from "@tmgg/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeConfigProject } from "./config-project.ts";
import { FakeRunner } from "./fake-runner.ts";

let root: string;

const STAGE = `name: bo
architectures: [models/gnn]
datasets: [data/sbm]
hyperparameter_space:
  learning_rate: {low: 1.0e-5, high: 1.0e-1, log: true}
  model.num_layers: [2, 4, 8]
num_trials: 12
seeds: [1, 2]
command: [fake]
config_dir: configs
`;

beforeEach(async () => {
  root = await makeConfigProject("tmgg-study-");
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function coordinator(runner: FakeRunner, results = "results"): ExperimentCoordinator {
  return new ExperimentCoordinator({
    backend: runner,
    storage: path.join(root, results),
    projectRoot: root,
  });
}

describe("a stage with num_trials", () => {
  it("runs 12 trials x seeds experiments, and a resume after a cancel repeats none that completed", async () => {
    const stage = parseStageConfig(STAGE);
    const runner = new FakeRunner({ behave: () => ({ durationMs: 10 }) });
    const controller = new AbortController();
    let finished = 0;
    const first = await coordinator(runner).runStage(
      stage,
      {},
      {
        parallelism: 3,
        signal: controller.signal,
        onEvent: (event) => {
          if (event.type === "finished" && ++finished === 9) controller.abort();
        },
      },
    );
    expect(first.summary.completed).toBeGreaterThanOrEqual(9);
    expect(first.summary.completed).toBeLessThan(24);
    const completedFirst = first.experiments
      .filter((e) => e.status === "completed")
      .map((e) => e.runId);

    const second = await coordinator(runner).runStage(stage, {}, { parallelism: 3 });
    expect(second.trials).toHaveLength(12);
    expect(second.trials!.every((t) => t.state === "complete" && typeof t.value === "number")).toBe(
      true,
    );
    expect(second.summary).toMatchObject({ totalExperiments: 24, completed: 24 });
    expect(second.summary.skipped).toBe(completedFirst.length);
    for (const id of completedFirst) expect(runner.starts.get(id)).toBe(1);
    // the first session's trials come back with the same points
    for (const trial of first.trials!.filter((t) => t.state === "complete")) {
      expect(second.trials!.find((t) => t.number === trial.number)?.params).toEqual(trial.params);
    }
    expect(second.groups.every((g) => g.n === 2)).toBe(true);
    // every run records its trial, so a resume numbers the trials as they were
    for (const trial of second.trials!) {
      for (const runId of trial.runIds) {
        expect(second.experiments.find((e) => e.runId === runId)?.trial).toBe(trial.number);
      }
    }
    expect(second.bestConfig).not.toBeNull();
    for (const report of [renderText(second), renderMarkdown(second)]) {
      expect(report).toContain("Objective over trials");
      expect(report).toMatch(
        /12 trials \(12 complete, 0 failed\); best val_loss so far: trial 0: [0-9.e-]+/,
      );
    }
  });

  it("groups the trials as their configs would, taking the groups from the study", async () => {
    const stage = parseStageConfig(STAGE);
    const result = await coordinator(new FakeRunner()).runStage(stage, {}, { parallelism: 4 });
    const fromConfigs = groupResults(result.experiments, Object.keys(stage.hyperparameterSpace));
    expect(result.groups).toHaveLength(12);
    expect(result.groups).toEqual(rankGroups(fromConfigs, stage.objective));
  });

  it("replays the same suggestions for the same stage", async () => {
    const stage = parseStageConfig(STAGE);
    const a = await coordinator(new FakeRunner(), "a").runStage(stage, {}, { parallelism: 1 });
    const b = await coordinator(new FakeRunner(), "b").runStage(stage, {}, { parallelism: 1 });
    expect(a.trials!.map((t) => t.params)).toEqual(b.trials!.map((t) => t.params));
    const lrs = a.trials!.map((t) => t.params["learning_rate"] as number);
    expect(lrs.every((lr) => lr >= 1e-5 && lr <= 1e-1)).toBe(true);
    expect(new Set(lrs).size).toBe(12);
  });

  it("counts a trial with a failed seed as failed and keeps going", async () => {
    const stage = parseStageConfig(STAGE);
    const runner = new FakeRunner({
      behave: (spec) =>
        (spec.config["learning_rate"] as number) > 0.01 ? { exitCode: 1, stderr: "diverged" } : {},
    });
    const result = await coordinator(runner).runStage(stage, {}, { parallelism: 4 });
    expect(result.trials).toHaveLength(12);
    const failed = result.trials!.filter((t) => t.state === "failed");
    for (const trial of failed)
      expect(trial.params["learning_rate"] as number).toBeGreaterThan(0.01);
    expect(runner.totalStarts).toBe(24);
  });
});
