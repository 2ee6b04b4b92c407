import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError } from "./config-error.ts";
import { StagePlanner, gridSize } from "./plan.ts";
import { canonicalJson, runId } from "./run-id.ts";
import { parseStageConfig } from "./stage-config.ts";

let root: string;

async function put(relative: string, text: string): Promise<void> {
  const file = path.join(root, relative);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}

function stage(extra = ""): ReturnType<typeof parseStageConfig> {
  return parseStageConfig(`name: s1
architectures: [models/gnn, models/attention]
datasets: [data/sbm]
hyperparameter_space:
  learning_rate: [0.001, 0.01]
  model.num_layers: [4, 8]
seeds: [1, 2, 3]
command: [node, train.mjs]
config_dir: configs
${extra}`);
}

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "tmgg-plan-"));
  await put("configs/models/gnn.yaml", "_target_: GNN\nnum_layers: 2\nhidden: 64\n");
  await put("configs/models/attention.yaml", "_target_: Attention\nnum_heads: 4\n");
  await put("configs/data/sbm.yaml", "num_nodes: 20\np_in: 0.8\n");
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("StagePlanner", () => {
  it("expands architectures x datasets x grid x seeds into resolved configs", async () => {
    const s = stage();
    const planner = await StagePlanner.create(s, {
      projectRoot: root,
      baseConfig: { trainer: { epochs: 3 } },
    });
    const runs = [...planner.grid()];
    expect(runs).toHaveLength(24);
    expect(gridSize(s)).toBe(24);
    expect(new Set(runs.map((r) => r.runId)).size).toBe(24);
    expect(new Set(runs.map((r) => r.groupId)).size).toBe(8);
    const first = runs[0]!;
    expect(first.config).toEqual({
      trainer: { epochs: 3 },
      model: { _target_: "GNN", num_layers: 4, hidden: 64 },
      data: { num_nodes: 20, p_in: 0.8 },
      learning_rate: 0.001,
      seed: 1,
      architecture: "models/gnn",
      dataset: "data/sbm",
      stage: "s1",
    });
    expect(first.runId).toMatch(/^gnn_sbm_learning_rate=0.001_num_layers=4_seed=1-[0-9a-f]{10}$/);
  });

  it("replaces the model section when the architecture's _target_ differs from the base's", async () => {
    const planner = await StagePlanner.create(stage(), {
      projectRoot: root,
      baseConfig: { model: { _target_: "GNN", dropout: 0.1 } },
    });
    const attention = [...planner.grid()].find((r) => r.architecture === "models/attention")!;
    expect(attention.config["model"]).toEqual({
      _target_: "Attention",
      num_heads: 4,
      num_layers: 4,
    });
    const gnn = [...planner.grid()].find((r) => r.architecture === "models/gnn")!;
    expect(gnn.config["model"]).toMatchObject({ dropout: 0.1, hidden: 64 });
  });

  it("merges a file headed '# @package _global_' at the root", async () => {
    await put(
      "configs/data/sbm.yaml",
      "# @package _global_\ndata: {num_nodes: 7}\ntrainer: {epochs: 9}\n",
    );
    const planner = await StagePlanner.create(stage(), {
      projectRoot: root,
      baseConfig: { trainer: { epochs: 3, lr: 1 } },
    });
    const run = planner.grid().next().value!;
    expect(run.config["trainer"]).toEqual({ epochs: 9, lr: 1 });
    expect(run.config["data"]).toEqual({ num_nodes: 7 });
  });

  it("gives the same run id to the same config whatever the order of its keys", async () => {
    const parts = { architecture: "a", dataset: "d", params: { x: 1 }, seed: 1 };
    expect(runId(parts, { a: 1, b: { c: 2, d: 3 } })).toBe(
      runId(parts, { b: { d: 3, c: 2 }, a: 1 }),
    );
    expect(runId(parts, { a: 1 })).not.toBe(runId(parts, { a: 2 }));
    expect(canonicalJson({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}');
    const again = [...(await StagePlanner.create(stage(), { projectRoot: root })).grid()].map(
      (r) => r.runId,
    );
    const reordered = stage().hyperparameterSpace;
    const swapped = {
      ...stage(),
      hyperparameterSpace: {
        "model.num_layers": reordered["model.num_layers"]!,
        learning_rate: reordered["learning_rate"]!,
      },
    };
    const swappedIds = [...(await StagePlanner.create(swapped, { projectRoot: root })).grid()].map(
      (r) => r.config,
    );
    expect(swappedIds.map((c) => canonicalJson(c)).sort()).toEqual(
      [...(await StagePlanner.create(stage(), { projectRoot: root })).grid()]
        .map((r) => canonicalJson(r.config))
        .sort(),
    );
    expect(again).toHaveLength(24);
  });

  it("keeps run ids readable and short even for long values", async () => {
    await put("configs/models/gnn.yaml", "{}");
    const s = stage().hyperparameterSpace;
    const long = {
      ...stage(),
      hyperparameterSpace: { ...s, "model.very_long_hyperparameter_name_here": ["x".repeat(300)] },
    };
    const run = (await StagePlanner.create(long, { projectRoot: root })).grid().next().value!;
    expect(run.runId.length).toBeLessThanOrEqual(91);
    expect(run.runId).toMatch(/^[A-Za-z0-9_.=-]+$/);
  });

  it("refuses config paths with '..', absolute paths and symlinks out of config_dir", async () => {
    const withArch = (arch: string): ReturnType<typeof parseStageConfig> => ({
      ...stage(),
      architectures: [arch],
    });
    await expect(
      StagePlanner.create(withArch("../secrets"), { projectRoot: root }),
    ).rejects.toThrow(/may not contain/);
    await expect(
      StagePlanner.create(withArch("/etc/passwd"), { projectRoot: root }),
    ).rejects.toThrow(/relative path/);
    await put("outside.yaml", "secret: 1\n");
    await symlink(path.join(root, "outside.yaml"), path.join(root, "configs/models/link.yaml"));
    const error = await StagePlanner.create(withArch("models/link"), { projectRoot: root }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/outside config_dir/);
    expect((error as ConfigError).key).toBe("architectures[0]");
  });

  it("names a missing config file and the stage key that asked for it", async () => {
    const error = (await StagePlanner.create(
      { ...stage(), datasets: ["data/missing"] },
      { projectRoot: root },
    ).catch((e: unknown) => e)) as ConfigError;
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.key).toBe("datasets[0]");
    expect(error.message).toContain("data/missing");
    expect(error.message).toContain(path.join(root, "configs/data/missing.yaml"));
  });

  it("names the file of a malformed config file", async () => {
    await put("configs/data/sbm.yaml", "num_nodes: [1\n");
    const error = (await StagePlanner.create(stage(), { projectRoot: root }).catch(
      (e: unknown) => e,
    )) as ConfigError;
    expect(error.file).toBe(path.join(root, "configs/data/sbm.yaml"));
    expect(error.line).toBeDefined();
  });

  it("refuses a dotted hyperparameter that runs through a non-mapping value", async () => {
    const planner = await StagePlanner.create(
      { ...stage(), hyperparameterSpace: { "model.hidden.size": [1] } },
      { projectRoot: root },
    );
    expect(() => planner.grid().next()).toThrow(/model.hidden" is 64, not a mapping/);
  });
});
