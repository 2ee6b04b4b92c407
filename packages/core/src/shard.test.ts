import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError } from "./config-error.ts";
import { ExperimentCoordinator } from "./coordinator.ts";
import { parseShard, shardOfPair, shardOfRun } from "./plan.ts";
import { parseStageConfig } from "./stage-config.ts";

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "tmgg-shard-"));
  for (const [file, text] of [
    ["configs/models/gnn.yaml", "_target_: GNN\n"],
    ["configs/models/attention.yaml", "_target_: Attention\n"],
    ["configs/data/sbm.yaml", "n: 20\n"],
    ["configs/data/er.yaml", "n: 30\n"],
  ] as const) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), text);
  }
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const GRID = `name: s
architectures: [models/gnn, models/attention]
datasets: [data/sbm, data/er]
hyperparameter_space:
  learning_rate: [0.001, 0.01, 0.1]
  model.num_layers: [2, 4, 8]
seeds: [1, 2, 3]
command: [node, train.mjs]
config_dir: configs
`;

function coordinator(): ExperimentCoordinator {
  return new ExperimentCoordinator({
    backend: "local",
    storage: path.join(root, "results"),
    projectRoot: root,
  });
}

describe("parseShard", () => {
  it("reads index/count counted from 1", () => {
    expect(parseShard("1/3")).toEqual({ index: 1, count: 3 });
    expect(parseShard(" 3 / 3 ")).toEqual({ index: 3, count: 3 });
  });

  it("rejects an index out of range, a zero count and anything but whole numbers", () => {
    for (const bad of ["0/3", "4/3", "1/0", "1.5/3", "a/b", "2", "-1/3", "1/3/4"]) {
      expect(() => parseShard(bad), bad).toThrow(ConfigError);
    }
    expect(() => parseShard("4/3")).toThrow(/shard 4\/3 is not valid: .*1 <= index <= count/);
    expect(() => parseShard("two")).toThrow(/write index\/count, e.g. 2\/4/);
  });
});

describe("shardOfRun", () => {
  it("puts a run in the same shard on every machine (a SHA-256 of its id, modulo n)", () => {
    // pinned (checked with Python hashlib): a change would move runs between a sweep's jobs
    expect([1, 2, 3, 4, 5].map((n) => shardOfRun("gnn_sbm_lr=0.01_seed=1-3fa9c2d1e0", n))).toEqual([
      1, 1, 3, 1, 5,
    ]);
  });

  it("spreads many runs evenly and keeps a run's shard when other runs are added", () => {
    const ids = Array.from({ length: 3000 }, (_, i) => `run_${i}-${(i * 7919).toString(16)}`);
    const sizes = [0, 0, 0];
    for (const id of ids) sizes[shardOfRun(id, 3) - 1]!++;
    for (const size of sizes) expect(Math.abs(size - 1000)).toBeLessThan(120);
    const before = ids.slice(0, 100).map((id) => shardOfRun(id, 3));
    expect(ids.slice(0, 100).map((id) => shardOfRun(id, 3))).toEqual(before);
  });
});

describe("ExperimentCoordinator.planStage with a shard", () => {
  it("splits a grid so that n shards cover every run exactly once", async () => {
    const stage = parseStageConfig(GRID);
    const all = await coordinator().planStage(stage);
    expect(all.runs).toHaveLength(108);
    for (const count of [1, 2, 3, 5]) {
      const seen = new Map<string, number>();
      for (let index = 1; index <= count; index++) {
        const part = await coordinator().planStage(stage, {}, { shard: { index, count } });
        expect(part.total).toBe(part.runs.length);
        expect(part.shard).toEqual({ index, count });
        for (const run of part.runs) seen.set(run.runId, (seen.get(run.runId) ?? 0) + 1);
      }
      expect(seen.size, `${count} shards`).toBe(108);
      expect([...seen.values()].every((n) => n === 1)).toBe(true);
    }
  });

  it("deals a num_trials stage's studies (architecture x dataset pairs) round-robin", async () => {
    const stage = parseStageConfig(`name: s
architectures: [models/gnn, models/attention]
datasets: [data/sbm, data/er]
hyperparameter_space:
  learning_rate: {low: 0.0001, high: 0.1, log: true}
num_trials: 4
seeds: [1, 2]
command: [node, train.mjs]
config_dir: configs
`);
    expect([0, 1, 2, 3].map((pair) => shardOfPair(pair, 3))).toEqual([1, 2, 3, 1]);
    const totals: number[] = [];
    const pairs: string[][] = [];
    for (let index = 1; index <= 3; index++) {
      const plan = await coordinator().planStage(stage, {}, { shard: { index, count: 3 } });
      totals.push(plan.total);
      const seen = new Set<string>();
      for (let run = plan.study!.next(); run; run = plan.study!.next())
        seen.add(`${run.architecture} ${run.dataset}`);
      pairs.push([...seen].sort());
    }
    // 4 trials x 2 seeds per study: shard 1 has two studies, shards 2 and 3 one each
    expect(totals).toEqual([16, 8, 8]);
    expect(pairs).toEqual([
      ["models/attention data/er", "models/gnn data/sbm"],
      ["models/gnn data/er"],
      ["models/attention data/sbm"],
    ]);
  });
});
