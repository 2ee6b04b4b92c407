/**
 * The example experiments (examples/) and the demo stage (stages/example.yaml), run for
 * real as child processes under the experiment contract: a resolved config.json in a fresh
 * run folder, the TMGG_* environment, the argv placeholders expanded by core.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  StagePlanner,
  contractEnv,
  expandCommand,
  gridSize,
  loadStageConfig,
  readYamlFile,
  resolveSpec,
} from "@tmgg/core";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const SBM = {
  configDir: "examples/sbm-denoising/configs",
  command: ["node", "examples/sbm-denoising/train.mjs"],
};
const PY = { configDir: "examples/python/configs", train: ["python3", "examples/python/train.py"] };
const TORCH_PYTHON = "/usr/bin/python3";

type Config = Record<string, unknown>;
type Metrics = Record<string, number>;

interface Outcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  runDir: string;
  wallMs: number;
  metrics: Metrics | undefined;
  progress: Record<string, unknown>[];
}

const tempDirs: string[] = [];
afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

function isObject(value: unknown): value is Config {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function exec(
  file: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: ROOT, env: options.env ?? process.env, timeout: options.timeoutMs ?? 60_000 },
      (error, stdout, stderr) => {
        const code = error ? error.code : 0;
        resolve({
          exitCode: typeof code === "number" ? code : null,
          stdout,
          stderr: error && !stderr ? error.message : stderr,
        });
      },
    );
  });
}

const hasPython = (await exec("python3", ["--version"])).exitCode === 0;
const hasTorch = (await exec(TORCH_PYTHON, ["-c", "import torch"])).exitCode === 0;

async function yamlObject(file: string): Promise<Config> {
  const { value } = await readYamlFile(path.join(ROOT, file));
  if (!isObject(value)) throw new Error(`${file} is not a mapping`);
  return value;
}

function deepMerge(target: Config, source: Config): Config {
  const out: Config = { ...target };
  for (const [key, value] of Object.entries(source)) {
    const current = out[key];
    out[key] =
      isObject(current) && isObject(value) ? deepMerge(current, value) : structuredClone(value);
  }
  return out;
}

/**
 * The resolved config, composed by hand as DESIGN.md section 3 says: base.yaml; the
 * architecture file into `model` and the dataset file into `data` (merged, or replacing the
 * section when `_target_` differs); the dotted hyperparameters; `seed`; the bookkeeping keys.
 */
async function compose(
  configDir: string,
  architecture: string,
  dataset: string,
  params: Config,
  seed: number,
  stage = "examples-test",
): Promise<Config> {
  const config = await yamlObject(`${configDir}/base.yaml`);
  for (const [section, name] of [
    ["model", architecture],
    ["data", dataset],
  ] as const) {
    const file = await yamlObject(`${configDir}/${name}.yaml`);
    const current = config[section];
    config[section] =
      isObject(current) && current["_target_"] === file["_target_"]
        ? deepMerge(current, file)
        : file;
  }
  for (const [dotted, value] of Object.entries(params)) {
    const parts = dotted.split(".");
    let node = config;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      node = isObject(next) ? next : (node[part] = {});
    }
    node[parts.at(-1)!] = value;
  }
  return { ...config, seed, architecture, dataset, stage };
}

/** Runs `command` as a runner would: config.json in a fresh run folder, TMGG_* env, placeholders expanded. */
async function runExperiment(
  command: readonly string[],
  config: Config,
  options: { withoutConfigEnv?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<Outcome> {
  const runDir = await mkdtemp(path.join(os.tmpdir(), "tmgg-examples-"));
  tempDirs.push(runDir);
  const configPath = path.join(runDir, "config.json");
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
  const spec = resolveSpec({
    runId: "examples-test-run",
    config,
    command,
    stage: "examples-test",
    projectRoot: ROOT,
  });
  const paths = { runDir, configPath };
  const [file, ...args] = expandCommand(spec, paths);
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env), ...contractEnv(spec, paths) };
  if (options.withoutConfigEnv) delete env["TMGG_CONFIG"];
  const started = performance.now();
  const result = await exec(file!, args, { env });
  const wallMs = performance.now() - started;
  const metricsText = await readFile(path.join(runDir, "metrics.json"), "utf8").catch(
    () => undefined,
  );
  const progressText = await readFile(path.join(runDir, "metrics.jsonl"), "utf8").catch(() => "");
  return {
    ...result,
    runDir,
    wallMs,
    metrics: metricsText === undefined ? undefined : (JSON.parse(metricsText) as Metrics),
    progress: progressText
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** Asserts the contract's outputs: exit 0, finite metrics, one progress line per epoch. */
function expectCompleted(outcome: Outcome, epochs: number): Metrics {
  expect(outcome.exitCode, outcome.stderr).toBe(0);
  expect(outcome.metrics).toBeDefined();
  const metrics = outcome.metrics!;
  for (const key of ["val_loss", "test_loss", "val_accuracy", "test_accuracy"]) {
    expect(Number.isFinite(metrics[key]), `${key} = ${metrics[key]}`).toBe(true);
  }
  for (const value of Object.values(metrics)) expect(Number.isFinite(value)).toBe(true);
  expect(outcome.progress).toHaveLength(epochs);
  expect(outcome.progress.map((line) => line["step"])).toEqual(
    Array.from({ length: epochs }, (_, i) => i + 1),
  );
  expect(outcome.progress.at(-1)?.["val_loss"]).toBe(metrics["val_loss"]);
  return metrics;
}

/** Cross-entropy of always predicting the expected edge density of the SBM config. */
function sbmConstantLoss(data: Config): number {
  const n = data["num_nodes"] as number;
  const blocks = data["num_blocks"] as number;
  const sizes = Array.from(
    { length: blocks },
    (_, b) => Math.floor(n / blocks) + (b < n % blocks ? 1 : 0),
  );
  const within = sizes.reduce((sum, size) => sum + (size * (size - 1)) / 2, 0);
  const total = (n * (n - 1)) / 2;
  const p =
    ((data["p_in"] as number) * within + (data["p_out"] as number) * (total - within)) / total;
  return -(p * Math.log(p) + (1 - p) * Math.log(1 - p));
}

describe("the SBM-denoising example (node examples/sbm-denoising/train.mjs)", () => {
  it("trains every architecture below the constant-prediction baseline and writes metrics, progress and a checkpoint", async () => {
    for (const architecture of ["models/linear", "models/mlp", "models/gnn"]) {
      const config = await compose(
        SBM.configDir,
        architecture,
        "data/sbm_small",
        { learning_rate: 0.03 },
        1,
      );
      const outcome = await runExperiment(SBM.command, config);
      const metrics = expectCompleted(outcome, (config["training"] as Config)["epochs"] as number);
      const constant = sbmConstantLoss(config["data"] as Config);
      expect(metrics["baseline_loss"]).toBeCloseTo(constant, 1);
      expect(metrics["val_loss"], architecture).toBeLessThan(0.6 * constant);
      expect(metrics["test_loss"], architecture).toBeLessThan(0.6 * constant);
      expect(metrics["val_accuracy"], architecture).toBeGreaterThan(0.85);
      const checkpoint = JSON.parse(
        await readFile(path.join(outcome.runDir, "checkpoints", "model.json"), "utf8"),
      ) as Config;
      expect(Object.keys(checkpoint["params"] as Config).length).toBeGreaterThan(0);
      expect(outcome.stdout).toContain("[sbm-denoising] done");
    }
  }, 60_000);

  it("gives the same metrics for the same config and seed, and other metrics for another seed", async () => {
    const config = await compose(
      SBM.configDir,
      "models/gnn",
      "data/sbm_small",
      { "model.num_layers": 1 },
      7,
    );
    const first = await runExperiment(SBM.command, config);
    const again = await runExperiment(SBM.command, config);
    const otherSeed = await runExperiment(SBM.command, { ...config, seed: 8 });
    expect(first.exitCode, first.stderr).toBe(0);
    expect(again.metrics).toEqual(first.metrics);
    expect(otherSeed.metrics?.["val_loss"]).not.toBe(first.metrics?.["val_loss"]);
  }, 60_000);

  it("responds to learning_rate and model.num_layers, so a sweep over them means something", async () => {
    const run = async (params: Config): Promise<Metrics> => {
      const outcome = await runExperiment(
        SBM.command,
        await compose(SBM.configDir, "models/gnn", "data/sbm_small", params, 1),
      );
      expect(outcome.exitCode, outcome.stderr).toBe(0);
      return outcome.metrics!;
    };
    const slow = await run({ learning_rate: 0.003, "model.num_layers": 1 });
    const fast = await run({ learning_rate: 0.03, "model.num_layers": 1 });
    const deeper = await run({ learning_rate: 0.03, "model.num_layers": 2 });
    expect(slow["val_loss"]! - fast["val_loss"]!).toBeGreaterThan(0.05);
    expect(deeper["num_parameters"]).toBeGreaterThan(fast["num_parameters"]!);
    expect(deeper["val_loss"]).not.toBe(fast["val_loss"]);
  }, 60_000);

  it("refuses an invalid config with exit code 2 and names every bad key", async () => {
    const config = await compose(
      SBM.configDir,
      "models/gnn",
      "data/sbm_small",
      { learning_rate: -1, "model.num_layers": "four", "model.num_layer": 3 },
      1,
    );
    const outcome = await runExperiment(SBM.command, config);
    expect(outcome.exitCode).toBe(2);
    expect(outcome.stderr).toContain("[sbm-denoising] invalid config");
    expect(outcome.stderr).toContain(path.join(outcome.runDir, "config.json"));
    expect(outcome.stderr).toContain("learning_rate must be a number above 0");
    expect(outcome.stderr).toContain(
      'model.num_layers must be an integer from 1 to 8 (got "four")',
    );
    expect(outcome.stderr).toContain(
      'model.num_layer is not a setting of this experiment (did you mean "num_layers"?)',
    );
    expect(outcome.metrics).toBeUndefined();
  }, 30_000);

  it("plans the demo stage's 24 runs with the configs composed by hand, and runs the first seed of each", async () => {
    const stage = await loadStageConfig(path.join(ROOT, "stages/example.yaml"));
    expect(stage).toMatchObject({
      name: "example",
      command: SBM.command,
      configDir: SBM.configDir,
      objective: { metric: "val_loss", mode: "min" },
      timeoutSeconds: 120,
      gpuType: "standard",
    });
    expect(gridSize(stage)).toBe(24);
    const planner = await StagePlanner.create(stage, {
      baseConfig: await yamlObject(`${SBM.configDir}/base.yaml`),
      projectRoot: ROOT,
    });
    const runs = [...planner.grid()];
    expect(runs).toHaveLength(24);
    expect(new Set(runs.map((run) => run.runId)).size).toBe(24);
    for (const run of runs) {
      expect(run.config).toEqual(
        await compose(
          SBM.configDir,
          run.architecture,
          run.dataset,
          run.params,
          run.seed,
          "example",
        ),
      );
    }
    const valLoss = new Map<string, number>();
    for (const run of runs.filter((r) => r.seed === stage.seeds[0])) {
      const outcome = await runExperiment(stage.command, run.config);
      const metrics = expectCompleted(outcome, 30);
      expect(outcome.wallMs).toBeLessThan(stage.timeoutSeconds * 1000);
      valLoss.set(`${run.architecture} ${JSON.stringify(run.params)}`, metrics["val_loss"]!);
    }
    expect(valLoss.size).toBe(8);
    const gnn = (lr: number): number =>
      valLoss.get(`models/gnn ${JSON.stringify({ learning_rate: lr, "model.num_layers": 1 })}`)!;
    expect(gnn(0.03)).toBeLessThan(gnn(0.003));
  }, 120_000);
});

describe("the Python examples (examples/python)", () => {
  const blobs = (params: Config = {}, seed = 1): Promise<Config> =>
    compose(PY.configDir, "models/logistic", "data/blobs", params, seed);

  it("train.py learns logistic regression from $TMGG_CONFIG below the baseline, the same each time", async (ctx) => {
    ctx.skip(!hasPython, "python3 is not on PATH");
    const config = await blobs();
    const first = await runExperiment(PY.train, config);
    const metrics = expectCompleted(first, 30);
    expect(metrics["val_loss"]).toBeLessThan(0.8 * Math.log(2));
    expect(metrics["test_loss"]).toBeLessThan(0.8 * metrics["baseline_loss"]!);
    expect((await runExperiment(PY.train, config)).metrics).toEqual(metrics);
    const slower = await runExperiment(PY.train, await blobs({ learning_rate: 0.001 }));
    expect(slower.metrics!["val_loss"]! - metrics["val_loss"]!).toBeGreaterThan(0.05);
    await stat(path.join(first.runDir, "checkpoints", "model.json"));
  }, 60_000);

  it('train.py takes the config as Hydra-style key=value arguments ("{overrides}"), and arguments win over the file', async (ctx) => {
    ctx.skip(!hasPython, "python3 is not on PATH");
    const config = await blobs();
    const fromFile = await runExperiment(PY.train, config);
    const fromArgs = await runExperiment([...PY.train, "{overrides}"], config, {
      withoutConfigEnv: true,
    });
    expect(fromArgs.exitCode, fromArgs.stderr).toBe(0);
    expect(fromArgs.metrics).toEqual(fromFile.metrics);

    const overridden = await runExperiment(
      [...PY.train, "learning_rate=0.001", "+training.epochs=12"],
      config,
    );
    const equivalent = await runExperiment(
      PY.train,
      await blobs({ learning_rate: 0.001, "training.epochs": 12 }),
    );
    expectCompleted(overridden, 12);
    expect(overridden.metrics).toEqual(equivalent.metrics);
    expect(overridden.metrics).not.toEqual(fromFile.metrics);
  }, 60_000);

  it("train.py refuses an invalid config with exit code 2 and names every bad key", async (ctx) => {
    ctx.skip(!hasPython, "python3 is not on PATH");
    const outcome = await runExperiment(
      PY.train,
      await blobs({ learning_rate: "fast", "training.epochs": 0 }),
    );
    expect(outcome.exitCode).toBe(2);
    expect(outcome.stderr).toContain("[python-example] invalid config");
    expect(outcome.stderr).toContain(
      'learning_rate must be a number from 1e-09 to 100 (got "fast")',
    );
    expect(outcome.stderr).toContain("training.epochs must be an integer from 1 to 100000 (got 0)");
    expect(outcome.metrics).toBeUndefined();
  }, 30_000);

  it("train_torch.py trains an MLP that beats logistic regression on moons, the same each time", async (ctx) => {
    ctx.skip(
      !hasTorch,
      `${TORCH_PYTHON} cannot import torch (Debian: apt-get install python3-torch)`,
    );
    const command = [TORCH_PYTHON, "examples/python/train_torch.py"];
    // On the CPU even where a GPU is visible: the check is the contract, not CUDA determinism.
    const env = { ...process.env, CUDA_VISIBLE_DEVICES: "" };
    const mlpConfig = await compose(
      PY.configDir,
      "models/mlp",
      "data/moons",
      { learning_rate: 0.03 },
      1,
    );
    const mlp = await runExperiment(command, mlpConfig, { env });
    const mlpMetrics = expectCompleted(mlp, 30);
    expect(mlpMetrics["val_loss"]).toBeLessThan(0.6 * mlpMetrics["baseline_loss"]!);
    expect((await runExperiment(command, mlpConfig, { env })).metrics).toEqual(mlpMetrics);
    const logistic = await runExperiment(
      command,
      await compose(PY.configDir, "models/logistic", "data/moons", { learning_rate: 0.03 }, 1),
      { env },
    );
    expect(expectCompleted(logistic, 30)["val_loss"]).toBeGreaterThan(mlpMetrics["val_loss"]!);
    await stat(path.join(mlp.runDir, "checkpoints", "model.pt"));
  }, 120_000);

  it("plans the Python stages, and every run of examples/python/stage.yaml completes", async (ctx) => {
    ctx.skip(!hasPython, "python3 is not on PATH");
    const torchStage = await loadStageConfig(path.join(ROOT, "examples/python/stage-torch.yaml"));
    expect(torchStage.command).toEqual(["python3", "examples/python/train_torch.py"]);
    expect(gridSize(torchStage)).toBe(8);
    const stage = await loadStageConfig(path.join(ROOT, "examples/python/stage.yaml"));
    expect(stage.command).toEqual(PY.train);
    const planner = await StagePlanner.create(stage, {
      baseConfig: await yamlObject(`${PY.configDir}/base.yaml`),
      projectRoot: ROOT,
    });
    const runs = [...planner.grid()];
    expect(runs).toHaveLength(6);
    for (const run of runs) {
      expect(run.config).toEqual(
        await compose(PY.configDir, run.architecture, run.dataset, run.params, run.seed, "python"),
      );
      expectCompleted(await runExperiment(stage.command, run.config), 30);
    }
  }, 60_000);

  it("train_torch.py says it needs PyTorch and exits 2 in a Python without it", async (ctx) => {
    ctx.skip(!hasPython, "python3 is not on PATH");
    // -S skips site-packages, where every torch install lives.
    const env = { ...process.env, PYTHONPATH: "" };
    const outcome = await runExperiment(
      ["python3", "-S", "examples/python/train_torch.py"],
      await blobs(),
      { env },
    );
    expect(outcome.exitCode).toBe(2);
    expect(outcome.stderr).toContain("train_torch.py needs PyTorch");
    expect(outcome.stderr).toContain("examples/python/train.py");
  }, 30_000);
});
