#!/usr/bin/env node
// Benchmark (not a test): the local runner's overhead against GNU parallel, and the
// coordinator's peak memory over a large plan. Targets from issue 3: wall time through
// `tmgg run` at most 1.25x GNU parallel's for N=500 trivial experiments at parallelism 8,
// and peak RSS of the coordinator under 150 MB at 10,000 planned runs.
// Needs `npm run build` and GNU parallel (apt-get install parallel).
// Usage: node bench/local-overhead.mjs [--runs 500] [--parallelism 8] [--rss-runs 10000]
import { spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { runs: { type: "string", default: "500" }, parallelism: { type: "string", default: "8" }, "rss-runs": { type: "string", default: "10000" } },
});
const N = Number(values.runs);
const P = Number(values.parallelism);
const RSS_RUNS = Number(values["rss-runs"]);
const BIN = fileURLToPath(new URL("../packages/cli/dist/bin.js", import.meta.url));

if (spawnSync("parallel", ["--version"]).status !== 0) {
  console.error("GNU parallel is not installed: apt-get install parallel");
  process.exit(2);
}

// The trivial experiment: write the metrics and exit. The same shell line runs under both.
const WORK = 'mkdir -p "$D" && printf \'{"val_loss": 0.5}\' > "$D/metrics.json"';

async function project(root, runs) {
  await mkdir(path.join(root, "configs/models"), { recursive: true });
  await mkdir(path.join(root, "configs/data"), { recursive: true });
  await writeFile(path.join(root, "configs/models/m.yaml"), "hidden: 1\n");
  await writeFile(path.join(root, "configs/data/d.yaml"), "n: 1\n");
  await writeFile(
    path.join(root, "stage.yaml"),
    `name: overhead
architectures: [models/m]
datasets: [data/d]
hyperparameter_space:
  index: [${Array.from({ length: runs }, (_, i) => i).join(", ")}]
seeds: [1]
command: [sh, -c, 'D="$TMGG_RUN_DIR"; ${WORK.replace(/'/g, "''")}']
config_dir: configs
timeout_seconds: 60
`,
  );
}

function timeCommand(command, args, options) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"], ...options });
    let peakKiB = 0;
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const poll = setInterval(async () => {
      try {
        const status = await readFile(`/proc/${child.pid}/status`, "utf8");
        const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        peakKiB = Math.max(peakKiB, hwm);
      } catch {}
    }, 50);
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(poll);
      if (code !== 0) reject(new Error(`${command} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve({ seconds: (performance.now() - start) / 1000, peakMiB: peakKiB / 1024 });
    });
  });
}

const root = await mkdtemp(path.join(tmpdir(), "tmgg-bench-overhead-"));
try {
  await project(root, N);
  const baseline = await timeCommand(
    "parallel",
    ["-j", String(P), `D=${root}/parallel-out/{}; ${WORK}`, ":::", ...Array.from({ length: N }, (_, i) => String(i))],
    { cwd: root, shell: false },
  );
  const ours = await timeCommand(process.execPath, [BIN, "run", "stage.yaml", "--parallelism", String(P), "--storage", "results", "--output-dir", "outputs"], {
    cwd: root,
    env: { ...process.env, CI: "true" },
  });
  const ratio = ours.seconds / baseline.seconds;
  console.log(`local overhead: ${N} trivial experiments at parallelism ${P}`);
  console.log(`  GNU parallel   ${baseline.seconds.toFixed(2)} s`);
  console.log(`  tmgg run       ${ours.seconds.toFixed(2)} s  (${(ours.seconds / N * 1000).toFixed(1)} ms per run, peak RSS ${ours.peakMiB.toFixed(0)} MiB)`);
  console.log(`  ratio          ${ratio.toFixed(2)}x  (target <= 1.25x: ${ratio <= 1.25 ? "met" : "MISSED"})`);

  const big = path.join(root, "big");
  await mkdir(big);
  await project(big, RSS_RUNS);
  const large = await timeCommand(process.execPath, [BIN, "run", "stage.yaml", "--parallelism", String(P), "--storage", "results", "--output-dir", "outputs"], {
    cwd: big,
    env: { ...process.env, CI: "true" },
  });
  console.log(`coordinator memory: ${RSS_RUNS} planned runs completed in ${large.seconds.toFixed(1)} s, peak RSS ${large.peakMiB.toFixed(0)} MiB  (target < 150 MB: ${large.peakMiB * 1.048576 < 150 ? "met" : "MISSED"})`);
} finally {
  await rm(root, { recursive: true, force: true });
}
