import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ExperimentResult, ExperimentSpec } from "@tmgg/core";
import { EXPERIMENT_FIXTURE, waitFor, type FakeBehaviour } from "@tmgg/test-utils";
import { LocalRunner, type LocalRunnerOptions } from "./local-runner.ts";
import { groupMembers } from "./process-group.ts";

interface Contract {
  argv: string[];
  cwd: string;
  env: Record<string, string | undefined>;
  runDirAtStart: string[];
  startedAtMs: number;
  endedAtMs: number;
}

/** Whether `pid` is a live process (a zombie is not). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    if (process.platform === "linux") return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let outputDir: string;
let runners: LocalRunner[];
let counter = 0;

beforeEach(async () => {
  outputDir = await mkdtemp(path.join(tmpdir(), "local-runner-test-"));
  runners = [];
});

afterEach(async () => {
  await Promise.all(runners.map((runner) => runner.close()));
  await rm(outputDir, { recursive: true, force: true });
});

function makeRunner(options: LocalRunnerOptions = {}): LocalRunner {
  const runner = new LocalRunner({ outputDir, gpus: [], killGraceMs: 1000, progressIntervalMs: 20, ...options });
  runners.push(runner);
  return runner;
}

function spec(label: string, behaviour: FakeBehaviour, extra: Partial<ExperimentSpec> = {}): ExperimentSpec {
  counter += 1;
  return {
    runId: `${label}-${counter}`,
    config: { learning_rate: 0.001, seed: 1, fake: behaviour },
    command: [process.execPath, EXPERIMENT_FIXTURE],
    stage: "tests",
    ...extra,
  };
}

function runDirOf(experiment: ExperimentSpec): string {
  return path.join(outputDir, experiment.stage ?? "adhoc", experiment.runId);
}

async function contractOf(result: ExperimentResult): Promise<Contract> {
  return JSON.parse(await readFile(path.join(result.logsPath!, "contract.json"), "utf8")) as Contract;
}

async function spawnedPids(experiment: ExperimentSpec): Promise<{ pid: number; pids: number[] }> {
  const file = path.join(runDirOf(experiment), "pids.json");
  await waitFor(() => existsSync(file), 10_000);
  await waitFor(() => readFileSync(file, "utf8").endsWith("}"), 1000);
  return JSON.parse(await readFile(file, "utf8")) as { pid: number; pids: number[] };
}

describe("process trees", () => {
  it("ends a timed-out run's whole process tree, grandchildren that ignore SIGTERM included", async () => {
    const runner = makeRunner({ killGraceMs: 300 });
    const experiment = spec("tree-timeout", { durationMs: 60_000, grandchildren: 3, ignoreSigterm: true });
    const before = Date.now();
    const running = runner.runExperiment(experiment, { timeoutSeconds: 0.5 });
    const { pid, pids } = await spawnedPids(experiment);
    expect(pids).toHaveLength(3);
    expect(pids.every(isRunning)).toBe(true);

    const result = await running;
    const elapsedMs = Date.now() - before;
    expect(result.status).toBe("timeout");
    expect(elapsedMs).toBeGreaterThanOrEqual(800); // 0.5 s, then the 300 ms grace before SIGKILL
    expect(elapsedMs).toBeLessThan(4000);
    expect([pid, ...pids].filter(isRunning)).toEqual([]);
    expect(groupMembers(pid)).toEqual([]);
  });

  it("sends SIGTERM to the whole group, so grandchildren that honour it end before the grace period", async () => {
    const runner = makeRunner({ killGraceMs: 8000 });
    const experiment = spec("tree-sigterm", { durationMs: 60_000, grandchildren: 2 });
    const before = Date.now();
    const running = runner.runExperiment(experiment, { timeoutSeconds: 0.5 });
    const { pid, pids } = await spawnedPids(experiment);
    const result = await running;
    expect(result.status).toBe("timeout");
    expect(Date.now() - before).toBeLessThan(4000);
    expect([pid, ...pids].filter(isRunning)).toEqual([]);
  });

  it("ends grandchildren left behind by a run that exits on its own", async () => {
    const runner = makeRunner();
    const experiment = spec("leftovers", { durationMs: 100, grandchildren: 2, metrics: { val_loss: 0.1 } });
    const running = runner.runExperiment(experiment);
    const { pid, pids } = await spawnedPids(experiment);
    const result = await running;
    expect(result.status).toBe("completed");
    expect([pid, ...pids].filter(isRunning)).toEqual([]);
  });

  it("leaves no process behind when a sweep's signal is aborted", async () => {
    const runner = makeRunner();
    const controller = new AbortController();
    const experiments = [0, 1, 2].map((i) => spec(`abort-${i}`, { durationMs: 60_000, grandchildren: 2 }));
    const sweep = runner.runSweep(experiments, { parallelism: 2, signal: controller.signal });
    const trees = await Promise.all(experiments.slice(0, 2).map(spawnedPids));
    controller.abort();
    const results = await sweep;
    expect(results.map((result) => result.status)).toEqual(["cancelled", "cancelled", "cancelled"]);
    for (const { pid, pids } of trees) expect([pid, ...pids].filter(isRunning)).toEqual([]);
    expect(existsSync(runDirOf(experiments[2]!))).toBe(false);
  });

  it("fails the runs of a launcher that dies as infrastructure failures, ends their trees, and starts a new launcher", async () => {
    const runner = makeRunner({ killGraceMs: 300 });
    const experiment = spec("launcher-lost", { durationMs: 60_000, grandchildren: 1 });
    const running = runner.runExperiment(experiment);
    const { pid, pids } = await spawnedPids(experiment);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const launcherPid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    expect(readFileSync(`/proc/${launcherPid}/cmdline`, "utf8")).toMatch(/launcher\.[jt]s/);
    process.kill(launcherPid, "SIGKILL");

    const result = await running;
    expect(result.status).toBe("failed");
    expect(result.failureKind).toBe("infrastructure");
    expect(result.errorMessage).toMatch(/launcher-lost-\d+: the launcher process ended \(SIGKILL\) while it ran/);
    expect([pid, ...pids].filter(isRunning)).toEqual([]);

    const next = await runner.runExperiment(spec("after-launcher", { durationMs: 10, metrics: { val_loss: 0.2 } }));
    expect(next.status).toBe("completed");
  });

  it("ends the runs of a sweep process killed with SIGKILL, SIGKILL after the grace for those ignoring SIGTERM", async () => {
    // A separate sweep process (the built runner) with two runs: one ends on SIGTERM, one
    // ignores it; after the coordinator dies its launcher must end both.
    const script = path.join(outputDir, "sweep.mjs");
    const runnerModule = new URL("../dist/index.js", import.meta.url).href;
    const experiments = [
      spec("orphan-polite", { durationMs: 60_000, grandchildren: 1 }),
      spec("orphan-stubborn", { durationMs: 60_000, grandchildren: 1, ignoreSigterm: true }),
    ];
    await writeFile(
      script,
      `import { LocalRunner } from ${JSON.stringify(runnerModule)};
const runner = new LocalRunner({ outputDir: ${JSON.stringify(outputDir)}, gpus: [], killGraceMs: 500 });
await Promise.all(${JSON.stringify(experiments)}.map((experiment) => runner.runExperiment(experiment)));
`,
    );
    const sweep = spawn(process.execPath, [script], { stdio: "ignore" });
    const trees = await Promise.all(experiments.map(spawnedPids));
    const pids = trees.flatMap(({ pid, pids }) => [pid, ...pids]);
    expect(pids.every(isRunning)).toBe(true);
    sweep.kill("SIGKILL");
    await waitFor(() => pids.every((pid) => !isRunning(pid)), 5000);
    expect(pids.filter(isRunning)).toEqual([]);
  });

  it("cancels everything in flight on close", async () => {
    const runner = makeRunner();
    const experiment = spec("closed", { durationMs: 60_000, grandchildren: 1 });
    const running = runner.runExperiment(experiment);
    const { pid, pids } = await spawnedPids(experiment);
    await runner.close();
    expect((await running).status).toBe("cancelled");
    expect([pid, ...pids].filter(isRunning)).toEqual([]);
  });
});

describe("output", () => {
  it("streams 200 MB of stdout to stdout.log without growing this process's memory", async () => {
    const runner = makeRunner();
    const printBytes = 200 * 1024 * 1024;
    const experiment = spec("printer", { printBytes, metrics: { val_loss: 0.1 } });
    const baseline = process.memoryUsage.rss();
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage.rss());
    }, 10);
    try {
      const result = await runner.runExperiment(experiment);
      expect(result.status).toBe("completed");
      expect(statSync(path.join(result.logsPath!, "stdout.log")).size).toBe(printBytes);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, process.memoryUsage.rss());
    expect(peak - baseline).toBeLessThan(100 * 1024 * 1024);
  }, 60_000);

  it("reports a crashing run's stderr tail while the other runs of the sweep complete", async () => {
    const runner = makeRunner();
    const crash = spec("crash", {}, {
      command: [
        process.execPath,
        "-e",
        "for (let i = 0; i < 5000; i++) console.error('warming up ' + i); throw new Error('kaboom in the training loop')",
      ],
    });
    const experiments = [spec("fine-a", { durationMs: 100, metrics: { val_loss: 1 } }), crash, spec("fine-b", { durationMs: 100, metrics: { val_loss: 2 } })];
    const results = await runner.runSweep(experiments, { parallelism: 3 });
    expect(results.map((result) => result.status)).toEqual(["completed", "failed", "completed"]);
    const message = results[1]!.errorMessage!;
    expect(message).toContain("exited with code 1");
    expect(message).toContain("Error: kaboom in the training loop");
    expect(message).not.toContain("warming up 0\n");
    expect(message.length).toBeLessThan(10_000);
    expect(statSync(path.join(results[1]!.logsPath!, "stderr.log")).size).toBeGreaterThan(50_000);
  });

  it("reports progress lines written in pieces, each once and in order", async () => {
    const runner = makeRunner();
    const progress = [1, 2, 3].map((step) => ({ step, val_loss: 1 / step }));
    const points: unknown[] = [];
    const result = await runner.runExperiment(
      spec("pieces", { progress, progressPauseMs: 100, metrics: { val_loss: 0.3 } }),
      { onProgress: (_runId, point) => points.push(point) },
    );
    expect(result.status).toBe("completed");
    expect(points).toEqual(progress);
  });

  it("fails a run whose program cannot be started, naming the program and the run", async () => {
    const runner = makeRunner();
    const starts: string[] = [];
    const experiment = spec("no-program", {}, { command: ["tmgg-no-such-program", "--flag"] });
    const result = await runner.runExperiment(experiment, { onStart: (runId) => starts.push(runId) });
    expect(result.status).toBe("failed");
    expect(result.errorMessage).toContain("[local-runner]");
    expect(result.errorMessage).toContain(experiment.runId);
    expect(result.errorMessage).toContain('"tmgg-no-such-program"');
    expect(result.errorMessage).toMatch(/not found/);
    expect(starts).toEqual([]);
  });
});

describe("the experiment contract", () => {
  it("expands placeholders, {overrides} included, and passes the TMGG_* and extra env in the project root", async () => {
    const projectRoot = path.join(outputDir, "project");
    await mkdir(projectRoot);
    const runner = makeRunner({ env: { EXTRA_SETTING: "on", TMGG_RUN_ID: "not-this-one" } });
    const behaviour: FakeBehaviour = { recordContract: true, recordEnv: ["EXTRA_SETTING"], metrics: { val_loss: 0.2 } };
    const experiment: ExperimentSpec = {
      runId: "placeholders-1",
      config: { model: { num_layers: 4, name: "gnn standard" }, noise: [0.1, 0.2], seed: 3, fake: behaviour },
      command: [process.execPath, EXPERIMENT_FIXTURE, "{config}", "--out={run_dir}/x", "id:{run_id}", "{seed}", "{overrides}"],
      stage: "stage-x",
      projectRoot,
    };
    const result = await runner.runExperiment(experiment);
    expect(result.status).toBe("completed");

    const runDir = path.join(outputDir, "stage-x", "placeholders-1");
    const configPath = path.join(runDir, "config.json");
    const contract = await contractOf(result);
    expect(contract.argv.slice(0, 8)).toEqual([
      configPath,
      `--out=${runDir}/x`,
      "id:placeholders-1",
      "3",
      "model.num_layers=4",
      'model.name="gnn standard"',
      "noise=[0.1,0.2]",
      "seed=3",
    ]);
    expect(contract.argv).toContain("fake.metrics.val_loss=0.2");
    expect(contract.cwd).toBe(projectRoot);
    expect(contract.env).toEqual({
      TMGG_RUN_ID: "placeholders-1",
      TMGG_STAGE: "stage-x",
      TMGG_SEED: "3",
      TMGG_RUN_DIR: runDir,
      TMGG_CONFIG: configPath,
      EXTRA_SETTING: "on",
      ...(process.env["CUDA_VISIBLE_DEVICES"] === undefined ? {} : { CUDA_VISIBLE_DEVICES: process.env["CUDA_VISIBLE_DEVICES"] }),
    });
    expect(JSON.parse(await readFile(configPath, "utf8"))).toEqual(experiment.config);
    expect(result.logsPath).toBe(runDir);
  });

  it("gives every attempt a fresh run folder holding only config.json and the logs at start", async () => {
    const runner = makeRunner();
    const experiment = spec("fresh", { recordContract: true, checkpoint: true, metrics: { val_loss: 1 } });
    const first = await runner.runExperiment(experiment);
    expect(first.checkpointPath).toBe(path.join(runDirOf(experiment), "checkpoints"));
    await writeFile(path.join(runDirOf(experiment), "stale.txt"), "from an earlier attempt");

    const second = await runner.runExperiment({ ...experiment, config: { ...experiment.config, fake: { recordContract: true, metrics: { val_loss: 1 } } }, attempt: 2 });
    expect(second.attempt).toBe(2);
    expect((await contractOf(second)).runDirAtStart).toEqual(["config.json", "stderr.log", "stdout.log"]);
    expect(existsSync(path.join(runDirOf(experiment), "stale.txt"))).toBe(false);
    expect(second.checkpointPath).toBeNull();
  });

  it("refuses a run id that could leave the output folder", async () => {
    const runner = makeRunner();
    await expect(runner.runExperiment(spec("x", {}, { runId: "../escape" }))).rejects.toThrow(
      /\[local-runner\] run id "\.\.\/escape" must start with a letter or digit/,
    );
  });

  it("refuses a second run with the id of one still running", async () => {
    const runner = makeRunner();
    const experiment = spec("twice", { durationMs: 60_000 });
    const first = runner.runExperiment(experiment);
    await expect(runner.runExperiment(experiment)).rejects.toThrow(/already pending or running/);
    await runner.cancel(experiment.runId);
    expect((await first).status).toBe("cancelled");
  });
});

describe("GPU slots", () => {
  async function sweepOnGpus(
    options: LocalRunnerOptions,
    count: number,
    gpuType = "standard",
  ): Promise<{ contracts: Contract[]; maxInFlight: number }> {
    const runner = makeRunner(options);
    const experiments = Array.from({ length: count }, (_, i) =>
      spec(`gpu-${i}`, { durationMs: 250, recordContract: true, metrics: { val_loss: i } }),
    );
    let inFlight = 0;
    let maxInFlight = 0;
    const results = await runner.runSweep(experiments, {
      parallelism: count,
      gpuType,
      onStart: () => {
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
      },
      onResult: () => {
        inFlight -= 1;
      },
    });
    expect(results.map((result) => result.status)).toEqual(experiments.map(() => "completed"));
    return { contracts: await Promise.all(results.map(contractOf)), maxInFlight };
  }

  function overlap(a: Contract, b: Contract): boolean {
    return a.startedAtMs < b.endedAtMs && b.startedAtMs < a.endedAtMs;
  }

  it("gives each run its own GPU and never runs more than the GPUs allow", async () => {
    const { contracts, maxInFlight } = await sweepOnGpus({ gpus: [0, 1], gpusPerExperiment: 1 }, 4);
    expect(maxInFlight).toBe(2);
    for (const contract of contracts) expect(["0", "1"]).toContain(contract.env["CUDA_VISIBLE_DEVICES"]);
    for (const a of contracts) {
      for (const b of contracts) {
        if (a !== b && overlap(a, b)) expect(a.env["CUDA_VISIBLE_DEVICES"]).not.toBe(b.env["CUDA_VISIBLE_DEVICES"]);
      }
    }
  });

  it("runs one at a time when each run takes both GPUs", async () => {
    const { contracts, maxInFlight } = await sweepOnGpus({ gpus: [0, 1], gpusPerExperiment: 2 }, 3);
    expect(maxInFlight).toBe(1);
    for (const contract of contracts) expect(contract.env["CUDA_VISIBLE_DEVICES"]).toBe("0,1");
  });

  it("takes the GPU count from a gpu type like T4:2, and device ids from a count", async () => {
    const { contracts, maxInFlight } = await sweepOnGpus({ gpus: 4 }, 3, "T4:2");
    expect(maxInFlight).toBe(2);
    for (const contract of contracts) expect(["0,1", "2,3"]).toContain(contract.env["CUDA_VISIBLE_DEVICES"]);
  });

  it("packs runs with a share of a GPU onto each GPU, each seeing only its GPU and its share", async () => {
    const { contracts, maxInFlight } = await sweepOnGpus({ gpus: [0, 1], gpusPerExperiment: 0.5 }, 6);
    expect(maxInFlight).toBe(4);
    for (const contract of contracts) {
      expect(["0", "1"]).toContain(contract.env["CUDA_VISIBLE_DEVICES"]);
      expect(contract.env["TMGG_GPU_FRACTION"]).toBe("0.5");
    }
    // never more than two runs (2 x 0.5) on one GPU at any moment; the most run at once
    // when one of them starts (runs that follow each other in one share both overlap a third)
    for (const a of contracts) {
      const sharing = contracts.filter(
        (b) =>
          b.startedAtMs <= a.startedAtMs &&
          a.startedAtMs < b.endedAtMs &&
          b.env["CUDA_VISIBLE_DEVICES"] === a.env["CUDA_VISIBLE_DEVICES"],
      );
      expect(sharing.length).toBeLessThanOrEqual(2);
    }
  });

  it("runs a cpu run beside busy GPUs with no device visible", async () => {
    const runner = makeRunner({ gpus: ["GPU-a"], gpusPerExperiment: 1 });
    const starts: string[] = [];
    const busy = spec("busy", { durationMs: 60_000 });
    const running = runner.runExperiment(busy, { onStart: (runId) => starts.push(runId) });
    await waitFor(() => starts.length === 1, 10_000);
    const result = await runner.runExperiment(spec("on-cpu", { recordContract: true, metrics: { val_loss: 1 } }), {
      gpuType: "cpu",
    });
    expect(result.status).toBe("completed");
    expect((await contractOf(result)).env["CUDA_VISIBLE_DEVICES"]).toBe("");
    await runner.cancel(busy.runId);
    expect((await running).status).toBe("cancelled");
  });

  it("fails a run that needs more GPUs than the runner has, saying how many", async () => {
    const runner = makeRunner({ gpus: [0, 1] });
    const result = await runner.runExperiment(spec("too-big", { metrics: { val_loss: 1 } }), { gpuType: "A100:4" });
    expect(result.status).toBe("failed");
    expect(result.errorMessage).toMatch(/needs 4 GPUs but this runner has 2 \(0, 1\)/);
  });
});

describe("options", () => {
  it.each([
    [{ gpus: -1 }, /option gpus must be a list of device ids, a count or "auto"/],
    [{ gpus: ["0,1"] }, /option gpus has an invalid device id "0,1"/],
    [{ gpus: [0, 0] }, /option gpus lists a device twice/],
    [{ gpusPerExperiment: 0 }, /option gpusPerExperiment must be a whole number of GPUs \(1, 2, …\) or a share of one GPU/],
    [{ gpusPerExperiment: 1.5 }, /option gpusPerExperiment must be a whole number of GPUs .*got 1.5/],
    [{ killGraceMs: -5 }, /option killGraceMs must be a number/],
    [{ env: { A: 1 } }, /option env\.A must be a string/],
  ])("rejects %j", (options, message) => {
    expect(() => new LocalRunner(options as LocalRunnerOptions)).toThrow(message);
  });

  it("puts run folders under ./outputs by default", () => {
    expect(new LocalRunner().outputDir).toBe(path.resolve("outputs"));
  });
});
