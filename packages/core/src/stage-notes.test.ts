import { describe, expect, it } from "vitest";
import { aggregateStage } from "./aggregate.ts";
import { ConfigError } from "./config-error.ts";
import { renderMarkdown, renderText, stageNotes } from "./report.ts";
import { fromDisk, stageResultSchema, toDisk, type ExperimentResult } from "./schemas.ts";
import { parseStageConfig } from "./stage-config.ts";

function completed(runId: string, lr: number): ExperimentResult {
  return {
    runId,
    config: { architecture: "models/gnn", dataset: "data/sbm", learning_rate: lr, seed: 1 },
    metrics: { val_loss: lr },
    checkpointPath: null,
    status: "completed",
    errorMessage: null,
    durationSeconds: 30,
    startedAt: "2026-01-01T00:00:00.000Z",
    completedAt: "2026-01-01T00:00:30.000Z",
    attempt: 1,
    backend: "local",
    gpuType: "A10G",
    logsPath: null,
  };
}

function result(extra: Partial<Parameters<typeof aggregateStage>[0]> = {}) {
  return aggregateStage({
    stageName: "s",
    experiments: [completed("a", 0.1), completed("b", 0.01)],
    objective: { metric: "val_loss", mode: "min" },
    paramKeys: ["learning_rate"],
    startedAt: "2026-01-01T00:00:00.000Z",
    backend: "local",
    ...extra,
  });
}

describe("stageNotes", () => {
  it("says nothing for a plain stage result", () => {
    expect(stageNotes(result())).toEqual([]);
    expect(renderText(result())).toContain("all runs completed");
  });

  it("names the shard, the runs claimed by other sweeps and the runs without a result", () => {
    const shard = result({ shard: { index: 2, count: 3 }, claimedRuns: ["c", "d"] });
    expect(shard.summary.claimed).toBe(2);
    expect(stageNotes(shard)).toEqual([
      "shard 2 of 3: this result covers that part of the stage; tmgg aggregate joins the shards",
      "2 runs were claimed by another sweep (not run here, not failed): c, d",
    ]);
    const text = renderText(shard);
    expect(text).toContain("Sweep s: 2 runs completed, 2 not run here");
    expect(text).toContain("! 2 runs were claimed by another sweep");
    const missing = result({ missingRuns: ["m1", "m2", "m3", "m4", "m5", "m6", "m7"] });
    expect(stageNotes(missing)).toEqual([
      "7 runs of the plan have no result yet (not run, or still running): m1, m2, m3, m4, m5 … (2 more)",
    ]);
    expect(renderText(missing)).toContain("Sweep s: 2 runs completed, 7 without a result yet");
  });

  it("reports a budget stop with what was spent against each cap, in text and markdown", () => {
    const stopped = result({
      budget: {
        limit: { costUsd: 5, gpuHours: 2 },
        spent: { costUsd: 4.2, gpuHours: 1.5 },
        stoppedEarly: true,
        notStarted: 3,
        notStartedRuns: ["x", "y", "z"],
      },
    });
    const note =
      "budget reached: 3 runs not started; spent $4.20 of max_cost_usd $5.00 (estimated), 1.50 of max_gpu_hours 2.00 GPU-hours (runs in flight counted at their timeout)";
    expect(stageNotes(stopped)).toEqual([note]);
    expect(renderText(stopped)).toContain(`! ${note}`);
    expect(renderMarkdown(stopped)).toContain("budget reached: 3 runs not started");
    const within = result({
      budget: {
        limit: { costUsd: null, gpuHours: 2 },
        spent: { costUsd: 0, gpuHours: 0.5 },
        stoppedEarly: false,
        notStarted: 0,
        notStartedRuns: [],
      },
    });
    expect(stageNotes(within)).toEqual(["budget: spent 0.50 of max_gpu_hours 2.00 GPU-hours"]);
  });

  it("writes the new fields in snake_case and reads them back", () => {
    const original = result({
      shard: { index: 1, count: 2 },
      claimedRuns: ["c"],
      budget: {
        limit: { costUsd: 5, gpuHours: null },
        spent: { costUsd: 1, gpuHours: 0.9 },
        stoppedEarly: false,
        notStarted: 0,
        notStartedRuns: [],
      },
    });
    const disk = toDisk(original) as Record<string, unknown>;
    expect(disk).toMatchObject({
      shard: { index: 1, count: 2 },
      claimed_runs: ["c"],
      budget: { limit: { cost_usd: 5, gpu_hours: null }, stopped_early: false, not_started: 0 },
      summary: { claimed: 1 },
    });
    expect(fromDisk(stageResultSchema, JSON.parse(JSON.stringify(disk)))).toEqual(original);
  });
});

describe("stage fields for scaling out", () => {
  const STAGE = `name: s
architectures: [models/gnn]
datasets: [data/sbm]
command: [node, train.mjs]
`;

  it("reads max_cost_usd, max_gpu_hours and max_retries", () => {
    const stage = parseStageConfig(
      `${STAGE}max_cost_usd: 25\nmax_gpu_hours: 10.5\nmax_retries: 2\n`,
    );
    expect(stage).toMatchObject({ maxCostUsd: 25, maxGpuHours: 10.5, maxRetries: 2 });
    expect(parseStageConfig(STAGE).maxRetries).toBeUndefined();
  });

  it("rejects caps that are not positive and retries that are not whole, naming the key and line", () => {
    expect(() => parseStageConfig(`${STAGE}max_cost_usd: 0\n`, "stages/s.yaml")).toThrow(
      /stages\/s\.yaml:5:\d+: max_cost_usd .*>0/,
    );
    expect(() => parseStageConfig(`${STAGE}max_retries: 1.5\n`, "stages/s.yaml")).toThrow(
      ConfigError,
    );
    expect(() => parseStageConfig(`${STAGE}max_retry: 1\n`)).toThrow(
      /unknown key "max_retry"; did you mean "max_retries"\?/,
    );
  });
});
