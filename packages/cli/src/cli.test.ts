import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { invocationLines, runTmgg, type Outcome } from "./cli-harness.test-support.ts";

/** A tiny experiment: val_loss from the learning rate and seed; knobs in the config. */
const EXPERIMENT = `
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import path from "node:path";
const config = JSON.parse(readFileSync(process.env.TMGG_CONFIG, "utf8"));
appendFileSync(path.join(process.cwd(), "invocations.log"), process.env.TMGG_RUN_ID + "\\n");
if (config.grandchild) {
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
  appendFileSync(path.join(process.cwd(), "pids.log"), child.pid + "\\n" + process.pid + "\\n");
}
console.log("training with learning_rate", config.learning_rate);
await new Promise((r) => setTimeout(r, config.sleep_ms ?? 0));
if (config.learning_rate === 0.5) { console.error("diverged: loss is nan"); process.exit(3); }
writeFileSync(path.join(process.env.TMGG_RUN_DIR, "metrics.json"),
  JSON.stringify({ val_loss: Math.abs(Math.log10(config.learning_rate) + 2) + config.seed / 100 }));
`;

let root: string;

async function project(stage: string, extraConfig = ""): Promise<void> {
  await mkdir(path.join(root, "configs/models"), { recursive: true });
  await mkdir(path.join(root, "configs/data"), { recursive: true });
  await mkdir(path.join(root, "stages"), { recursive: true });
  await writeFile(path.join(root, "configs/models/tiny.yaml"), "hidden: 8\n");
  await writeFile(path.join(root, "configs/data/toy.yaml"), "n: 10\n");
  await writeFile(path.join(root, "configs/base.yaml"), extraConfig || "sleep_ms: 0\n");
  await writeFile(path.join(root, "train.mjs"), EXPERIMENT);
  await writeFile(path.join(root, "stages/s.yaml"), stage);
}

const GRID = `name: s
architectures: [models/tiny]
datasets: [data/toy]
hyperparameter_space:
  learning_rate: [0.01, 0.1]
seeds: [1, 2, 3]
command: [node, train.mjs]
config_dir: configs
`;

function tmgg(args: string[], options: { onSpawn?: (pid: number) => void } = {}): Promise<Outcome> {
  return runTmgg(root, args, options);
}

function invocations(): Promise<string[]> {
  return invocationLines(root);
}

/** Alive and not a zombie (a container's init may leave the dead unreaped). */
async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "tmgg-cli-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("tmgg run", () => {
  it("runs a stage, prints the report with the best config by mean, and skips everything on a second run", async () => {
    await project(GRID);
    const first = await tmgg(["run", "stages/s.yaml"]);
    expect(first.stderr).toContain("6 runs planned, 0 already completed (skipped), 6 to run");
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("learning_rate");
    expect(first.stdout).toMatch(/0\.01/);
    expect(await invocations()).toHaveLength(6);
    const saved = JSON.parse(
      await readFile(path.join(root, "results/stages/s/stage_result.json"), "utf8"),
    ) as {
      best_config: { learning_rate: number };
      summary: { completed: number };
    };
    expect(saved.best_config.learning_rate).toBe(0.01);
    expect(saved.summary.completed).toBe(6);

    const second = await tmgg(["run", "stages/s.yaml", "--json"]);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain("6 already completed (skipped), 0 to run");
    expect((JSON.parse(second.stdout) as { summary: { skipped: number } }).summary.skipped).toBe(6);
    expect(await invocations()).toHaveLength(6);

    const fresh = await tmgg(["run", "stages/s.yaml", "--fresh", "--parallelism", "2"]);
    expect(fresh.code).toBe(0);
    expect(await invocations()).toHaveLength(12);
  });

  it("exits 1 when some runs failed and shows their stderr", async () => {
    await project(GRID.replace("[0.01, 0.1]", "[0.01, 0.5]"));
    const result = await tmgg(["run", "stages/s.yaml"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain("diverged: loss is nan");
    expect(result.stderr).toMatch(/failed\s+\S+learning_rate=0\.5/);
  });

  it("exits 2 naming the file and key for a bad stage, a missing file and bad flags", async () => {
    await project(GRID.replace("seeds:", "seedz:"));
    const bad = await tmgg(["run", "stages/s.yaml"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('stages/s.yaml:6:1: unknown key "seedz"; did you mean "seeds"?');
    const missing = await tmgg(["run", "stages/nope.yaml"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope.yaml: stage file not found");
    await writeFile(path.join(root, "stages/s.yaml"), GRID);
    const flag = await tmgg(["run", "stages/s.yaml", "--parallelism", "0"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain("--parallelism must be a positive whole number");
    const unknownFlag = await tmgg(["run", "stages/s.yaml", "--paralelism", "2"]);
    expect(unknownFlag.code).toBe(2);
    const backend = await tmgg(["run", "stages/s.yaml", "--backend", "slurm"]);
    expect(backend.code).toBe(2);
    expect(backend.stderr).toMatch(/unknown backend "slurm"; valid backends: .*local/);
    expect(await invocations()).toHaveLength(0);
  });

  it("refuses a config path that leaves config_dir", async () => {
    await project(GRID.replace("[models/tiny]", "[../stages/s]"));
    const result = await tmgg(["run", "stages/s.yaml"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /^tmgg: stages\/s\.yaml: architectures\[0\]: architecture "\.\.\/stages\/s" may not contain/,
    );
  });

  /** Runs a stage of slow runs with grandchildren, sends `signal` once two are in flight, and waits for the CLI to end. */
  async function signalMidRun(signal: NodeJS.Signals): ReturnType<typeof tmgg> {
    await project(GRID, "sleep_ms: 30000\ngrandchild: true\n");
    let pid = 0;
    const running = tmgg(["run", "stages/s.yaml", "--parallelism", "2"], {
      onSpawn: (p) => (pid = p),
    });
    for (let i = 0; i < 100 && (await invocations()).length < 2; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(await invocations()).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid, signal);
    return running;
  }

  /** Pids the runs and their grandchildren logged. */
  async function loggedPids(): Promise<number[]> {
    const pids = (await readFile(path.join(root, "pids.log"), "utf8"))
      .trim()
      .split("\n")
      .map(Number);
    expect(pids.length).toBeGreaterThanOrEqual(2);
    return pids;
  }

  it("cancels on SIGINT: exits 130, leaves no process behind and still saves the stage result", async () => {
    const result = await signalMidRun("SIGINT");
    expect(result.code).toBe(130);
    const saved = JSON.parse(
      await readFile(path.join(root, "results/stages/s/stage_result.json"), "utf8"),
    ) as {
      summary: { cancelled: number; total_experiments: number };
    };
    expect(saved.summary).toMatchObject({ cancelled: 6, total_experiments: 6 });
    const pids = await loggedPids();
    const alive = await Promise.all(pids.map(isAlive));
    expect(pids.filter((_, i) => alive[i])).toEqual([]);
  }, 30_000);

  it("leaves no experiment running when it is killed with SIGKILL mid-run", async () => {
    expect((await signalMidRun("SIGKILL")).signal).toBe("SIGKILL");
    const pids = await loggedPids();
    // The launcher sees its coordinator gone and ends the process groups it started.
    let left = pids;
    for (let i = 0; i < 100 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const alive = await Promise.all(pids.map(isAlive));
      left = pids.filter((_, i) => alive[i]);
    }
    expect(left).toEqual([]);
  }, 30_000);
});

describe("tmgg plan, report and backends", () => {
  it("plans what would run and what resume would skip", async () => {
    await project(GRID);
    const before = await tmgg(["plan", "stages/s.yaml"]);
    expect(before.code).toBe(0);
    expect(before.stdout).toContain("6 runs (2 configs x 3 seeds), 6 to run, 0 already completed");
    await tmgg(["run", "stages/s.yaml"]);
    const after = await tmgg(["plan", "stages/s.yaml", "--json"]);
    const plan = JSON.parse(after.stdout) as {
      to_run: number;
      skipped: number;
      runs: { action: string }[];
    };
    expect(plan).toMatchObject({ to_run: 0, skipped: 6 });
    expect(plan.runs.every((r) => r.action === "skip")).toBe(true);
    expect(await invocations()).toHaveLength(6);
  });

  it("renders a saved stage result as text or markdown, and names the stages when one is missing", async () => {
    await project(GRID);
    await tmgg(["run", "stages/s.yaml"]);
    const text = await tmgg(["report", "s"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("learning_rate");
    const markdown = await tmgg(["report", "s", "--format", "markdown"]);
    expect(markdown.stdout).toContain("|");
    const missing = await tmgg(["report", "other"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("stages there: s");
  });

  it("lists the installed backends", async () => {
    const result = await tmgg(["backends"]);
    expect(result.code).toBe(0);
    expect(result.stdout.split("\n")).toContain("local");
  });

  it("keeps run folders apart per run and writes the logs", async () => {
    await project(GRID);
    await tmgg(["run", "stages/s.yaml"]);
    const runs = await readdir(path.join(root, "outputs/s"));
    expect(runs).toHaveLength(6);
    const artifacts = await readdir(path.join(root, "results/stages/s/artifacts"));
    expect(artifacts).toHaveLength(6);
    const [attempt] = await readdir(path.join(root, "results/stages/s/artifacts", artifacts[0]!));
    // the logs are copied; config.json and metrics.json are in the result JSON already; empty files are not copied
    expect(
      await readdir(path.join(root, "results/stages/s/artifacts", artifacts[0]!, attempt!)),
    ).toEqual(["stdout.log"]);
  });
});
