import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { invocationLines, runTmgg, type Outcome } from "./cli-harness.test-support.ts";

/** Appends its run id to invocations.log when it starts, sleeps, then reports val_loss. */
const EXPERIMENT = `
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
const config = JSON.parse(readFileSync(process.env.TMGG_CONFIG, "utf8"));
appendFileSync(path.join(process.cwd(), "invocations.log"), process.env.TMGG_RUN_ID + "\\n");
await new Promise((r) => setTimeout(r, config.sleep_ms ?? 0));
writeFileSync(path.join(process.env.TMGG_RUN_DIR, "metrics.json"),
  JSON.stringify({ val_loss: config.learning_rate + config.seed / 100 }));
`;

const STAGE = `name: s
architectures: [models/tiny]
datasets: [data/toy]
hyperparameter_space:
  learning_rate: [0.01, 0.02, 0.05, 0.1]
seeds: [1, 2, 3]
command: [node, train.mjs]
config_dir: configs
`;

let root: string;

async function project(sleepMs: number): Promise<void> {
  await mkdir(path.join(root, "configs/models"), { recursive: true });
  await mkdir(path.join(root, "configs/data"), { recursive: true });
  await mkdir(path.join(root, "stages"), { recursive: true });
  await writeFile(path.join(root, "configs/models/tiny.yaml"), "hidden: 8\n");
  await writeFile(path.join(root, "configs/data/toy.yaml"), "n: 10\n");
  await writeFile(path.join(root, "configs/base.yaml"), `sleep_ms: ${sleepMs}\n`);
  await writeFile(path.join(root, "train.mjs"), EXPERIMENT);
  await writeFile(path.join(root, "stages/s.yaml"), STAGE);
}

function tmgg(args: string[], onSpawn?: (pid: number) => void): Promise<Outcome> {
  return runTmgg(root, args, onSpawn ? { onSpawn } : {});
}

function invocations(): Promise<string[]> {
  return invocationLines(root);
}

async function storedRuns(): Promise<string[]> {
  try {
    return (await readdir(path.join(root, "results/stages/s/runs")))
      .filter((name) => name.endsWith(".json"))
      .map((name) => name.slice(0, -".json".length));
  } catch {
    return [];
  }
}

function counts(ids: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const id of ids) out.set(id, (out.get(id) ?? 0) + 1);
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "tmgg-cli-scale-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("tmgg run after a SIGKILL", () => {
  it("leaves a killed sweep's runs alone until their leases expire, then completes the stage running only those again", async () => {
    await project(700);
    const lease = ["--lease-seconds", "6", "--parallelism", "2"];
    let pid = 0;
    const first = tmgg(["run", "stages/s.yaml", ...lease], (p) => (pid = p));
    // kill it while two runs are in flight, after a few have been saved
    const isMidway = async (): Promise<boolean> => {
      const saved = (await storedRuns()).length;
      return saved >= 3 && (await invocations()).length - saved >= 2;
    };
    for (let i = 0; i < 400 && !(await isMidway()); i++) await sleep(25);
    process.kill(pid, "SIGKILL");
    const killedAt = Date.now();
    expect((await first).signal).toBe("SIGKILL");
    const stored = new Set(await storedRuns());
    // Runs the dead sweep held: claimed (a lease in storage) and without a saved result;
    // those it had started were in flight (its launcher ends them; some may finish first).
    const held: string[] = [];
    const leases = path.join(root, "results/stages/s/leases");
    for (const name of await readdir(leases)) {
      const id = /^(.+)\.\d+\.json$/.exec(name)?.[1];
      if (id !== undefined && !stored.has(id) && !held.includes(id)) held.push(id);
    }
    const inFlight = (await invocations()).filter((id) => !stored.has(id));
    expect(stored.size).toBeGreaterThanOrEqual(3);
    expect(held.length).toBeGreaterThanOrEqual(1);
    expect(held.length).toBeLessThanOrEqual(2);
    for (const id of inFlight) expect(held).toContain(id);

    // At once: the dead sweep's leases are live, so its runs are claimed, not run.
    const early = await tmgg(["run", "stages/s.yaml", ...lease]);
    expect(Date.now() - killedAt, "the resume ran before the leases expired").toBeLessThan(
      6000 - 2000,
    );
    expect(early.code).toBe(0);
    const claimed = [
      ...early.stderr.matchAll(/claimed\s+(\S+) by another sweep, not run here \(held by /g),
    ].map((match) => match[1]);
    expect(claimed.sort()).toEqual([...held].sort());
    expect(early.stdout).toContain(
      `${held.length} ${held.length === 1 ? "run was" : "runs were"} claimed by another sweep`,
    );
    const afterEarly = counts(await invocations());
    // the early resume ran none of them; the dead sweep had started some
    for (const id of held) expect(afterEarly.get(id) ?? 0, id).toBeLessThanOrEqual(1);
    const ranByDeadSweep = held.filter((id) => afterEarly.has(id));

    // After the leases expire, a resume takes them over and the stage is complete.
    await sleep(Math.max(0, killedAt + 6500 - Date.now()));
    const late = await tmgg(["run", "stages/s.yaml", ...lease]);
    expect(late.code).toBe(0);
    const saved = JSON.parse(
      await readFile(path.join(root, "results/stages/s/stage_result.json"), "utf8"),
    ) as { summary: { completed: number; total_experiments: number }; claimed_runs?: string[] };
    expect(saved.summary).toMatchObject({ completed: 12, total_experiments: 12 });
    expect(saved.claimed_runs).toBeUndefined();
    const final = counts(await invocations());
    expect(final.size).toBe(12);
    for (const [id, n] of final) {
      if (ranByDeadSweep.includes(id)) expect(n, id).toBe(2);
      else expect(n, id).toBe(1);
    }
    // every lease was released or taken over and released
    const leaseFiles = (
      await readdir(path.join(root, "results/stages/s/leases"), {
        recursive: true,
        withFileTypes: true,
      })
    ).filter((entry) => entry.isFile());
    expect(leaseFiles).toEqual([]);
  }, 60_000);
});

describe("tmgg run with a budget", () => {
  it("stops starting runs at --max-gpu-hours and reports the runs not started", async () => {
    await project(400);
    // 1 GPU per run (gpu_type standard), at most 2 s each: 3 GPU-seconds let a run start
    // only while the runs before it used at most 1 s.
    const result = await tmgg([
      "run",
      "stages/s.yaml",
      "--parallelism",
      "1",
      "--timeout",
      "2",
      "--max-gpu-hours",
      String(3 / 3600),
    ]);
    expect(result.code).toBe(0);
    const ran = (await invocations()).length;
    expect(ran).toBeGreaterThanOrEqual(1);
    expect(ran).toBeLessThan(12);
    expect(result.stdout).toContain(`budget reached: ${12 - ran} runs not started`);
    expect(result.stderr).toContain(`budget reached: ${12 - ran} runs not started`);
    const saved = JSON.parse(
      await readFile(path.join(root, "results/stages/s/stage_result.json"), "utf8"),
    ) as {
      summary: { total_experiments: number; completed: number };
      budget: {
        stopped_early: boolean;
        not_started: number;
        not_started_runs: string[];
        spent: { gpu_hours: number; cost_usd: number };
      };
    };
    expect(saved.summary).toMatchObject({ total_experiments: ran, completed: ran });
    expect(saved.budget).toMatchObject({ stopped_early: true, not_started: 12 - ran });
    expect(saved.budget.spent.cost_usd).toBe(0); // local runs on your own GPUs
    expect(saved.budget.spent.gpu_hours * 3600).toBeLessThanOrEqual(3);
    const ids = new Set(await invocations());
    for (const id of saved.budget.not_started_runs) expect(ids.has(id)).toBe(false);
  }, 60_000);
});

describe("tmgg plan, run --shard and aggregate", () => {
  it("plans one shard with the cost against the budget, as text and JSON", async () => {
    await project(0);
    const text = await tmgg([
      "plan",
      "stages/s.yaml",
      "--shard",
      "2/3",
      "--max-gpu-hours",
      "3",
      "--timeout",
      "600",
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("shard 2 of 3: the runs whose run id hashes to it");
    expect(text.stdout).toMatch(
      /cost at worst: \d+ runs x 600 s timeout x 1 GPU on local standard/,
    );
    expect(text.stdout).toContain("budget: max_gpu_hours 1 (this shard's 1/3 share)");
    const json = await tmgg(["plan", "stages/s.yaml", "--shard", "2/3", "--json"]);
    const plan = JSON.parse(json.stdout) as {
      shard: { index: number; count: number };
      total: number;
      budget: { worst_case: { gpu_hours: number; cost_usd: number } };
    };
    expect(plan.shard).toEqual({ index: 2, count: 3 });
    expect(plan.budget.worst_case).toEqual({ cost_usd: 0, gpu_hours: plan.total });
  });

  it("rejects a bad --shard, --gpus-per-experiment or --lease-seconds with exit code 2", async () => {
    await project(0);
    const shard = await tmgg(["run", "stages/s.yaml", "--shard", "4/3"]);
    expect(shard.code).toBe(2);
    expect(shard.stderr).toContain("--shard 4/3 is not valid");
    const share = await tmgg(["run", "stages/s.yaml", "--gpus-per-experiment", "1.5"]);
    expect(share.code).toBe(2);
    expect(share.stderr).toContain("--gpus-per-experiment must be a whole number of GPUs");
    const lease = await tmgg(["run", "stages/s.yaml", "--lease-seconds", "0.5"]);
    expect(lease.code).toBe(2);
    expect(lease.stderr).toContain("--lease-seconds must be at least 1");
    expect(await invocations()).toEqual([]);
  });

  it("runs a stage as two shards and joins them with tmgg aggregate", async () => {
    await project(0);
    const one = await tmgg(["run", "stages/s.yaml", "--shard", "1/2"]);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain("shard 1 of 2");
    expect(one.stdout).toContain("results/stages/s/shards/1-of-2.json");
    const partial = await tmgg(["aggregate", "stages/s.yaml"]);
    expect(partial.code).toBe(1);
    expect(partial.stdout).toMatch(/\d+ runs? of the plan have no result yet/);
    const two = await tmgg(["run", "stages/s.yaml", "--shard", "2/2"]);
    expect(two.code).toBe(0);
    const joined = await tmgg(["aggregate", "stages/s.yaml", "--json"]);
    expect(joined.code).toBe(0);
    const result = JSON.parse(joined.stdout) as {
      summary: { completed: number; total_experiments: number };
      experiments: { run_id: string }[];
    };
    expect(result.summary).toMatchObject({ completed: 12, total_experiments: 12 });
    expect(new Set(result.experiments.map((e) => e.run_id)).size).toBe(12);
    expect(counts(await invocations()).size).toBe(12);
    expect((await invocations()).length).toBe(12);
  }, 30_000);
});
