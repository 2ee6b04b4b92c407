import { describe, expect, it } from "vitest";
import { aggregateStage, metricStats } from "./aggregate.ts";
import type { ExperimentResult } from "./schemas.ts";

function result(
  runId: string,
  lr: number,
  seed: number,
  valLoss: number | null,
  status: ExperimentResult["status"] = "completed",
): ExperimentResult {
  return {
    runId,
    config: { architecture: "models/a", dataset: "data/d", learning_rate: lr, seed, stage: "s" },
    metrics: valLoss === null ? {} : { val_loss: valLoss },
    checkpointPath: null,
    status,
    errorMessage: status === "completed" ? null : "boom",
    durationSeconds: 2,
    startedAt: "2026-01-01T00:00:00.000Z",
    completedAt: "2026-01-01T00:00:02.000Z",
    attempt: 1,
    backend: "fake",
    gpuType: "standard",
    logsPath: null,
  };
}

const base = {
  stageName: "s",
  objective: { metric: "val_loss", mode: "min" as const },
  paramKeys: ["learning_rate"],
  startedAt: "t",
  backend: "fake",
};

describe("aggregateStage", () => {
  it("chooses the best config by the mean over seeds, not one lucky seed", () => {
    const stage = aggregateStage({
      ...base,
      experiments: [
        result("a1", 0.1, 1, 0.05), // lucky seed
        result("a2", 0.1, 2, 0.9),
        result("a3", 0.1, 3, 0.9),
        result("b1", 0.01, 1, 0.3),
        result("b2", 0.01, 2, 0.31),
        result("b3", 0.01, 3, 0.29),
      ],
    });
    expect(stage.bestConfig).toMatchObject({ learning_rate: 0.01 });
    expect(stage.bestConfig).not.toHaveProperty("seed");
    expect(stage.bestMetrics?.["val_loss"]).toBeCloseTo(0.3, 10);
    expect(stage.bestRun).toBe("b3");
    expect(stage.groups[0]!.metrics["val_loss"]).toMatchObject({ n: 3, min: 0.29, max: 0.31 });
    expect(stage.groups[0]!.metrics["val_loss"]!.std).toBeCloseTo(0.01, 10);
    expect(stage.groups[0]!.params).toEqual({ learning_rate: 0.01 });
  });

  it("breaks ties on the mean with the lower std", () => {
    const stage = aggregateStage({
      ...base,
      experiments: [
        result("a1", 0.1, 1, 0.1),
        result("a2", 0.1, 2, 0.5),
        result("b1", 0.2, 1, 0.3),
        result("b2", 0.2, 2, 0.3),
      ],
    });
    expect(stage.bestConfig).toMatchObject({ learning_rate: 0.2 });
  });

  it("maximizes when the objective says max", () => {
    const stage = aggregateStage({
      ...base,
      objective: { metric: "val_loss", mode: "max" },
      experiments: [result("a1", 0.1, 1, 0.1), result("b1", 0.2, 1, 0.3)],
    });
    expect(stage.bestRun).toBe("b1");
  });

  it("counts every status and leaves failed runs out of the groups", () => {
    const stage = aggregateStage({
      ...base,
      skipped: 1,
      experiments: [
        result("a1", 0.1, 1, 0.1),
        result("a2", 0.1, 2, null, "failed"),
        result("a3", 0.1, 3, null, "timeout"),
        result("a4", 0.1, 4, null, "cancelled"),
      ],
    });
    expect(stage.summary).toEqual({
      totalExperiments: 4,
      completed: 1,
      failed: 1,
      timeout: 1,
      cancelled: 1,
      skipped: 1,
      successRate: 0.25,
      meanDurationSeconds: 2,
      totalDurationSeconds: 8,
    });
    expect(stage.groups).toHaveLength(1);
    expect(stage.groups[0]!.n).toBe(1);
  });

  it("has no best config when nothing completed", () => {
    const stage = aggregateStage({ ...base, experiments: [result("a1", 0.1, 1, null, "failed")] });
    expect(stage.bestConfig).toBeNull();
    expect(stage.bestRun).toBeNull();
    expect(stage.summary.successRate).toBe(0);
  });
});

describe("metricStats", () => {
  it("uses the sample standard deviation", () => {
    expect(metricStats([1, 2, 3, 4])).toEqual({
      n: 4,
      mean: 2.5,
      std: Math.sqrt(5 / 3),
      min: 1,
      max: 4,
    });
    expect(metricStats([7]).std).toBe(0);
  });
});
