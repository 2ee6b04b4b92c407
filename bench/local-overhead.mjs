#!/usr/bin/env node
// Benchmark (not a test): the local runner's overhead against GNU parallel, and the
// coordinator's peak memory over a large plan. Targets from issue 3: wall time through
// `tmgg run` at most 1.25x GNU parallel's for N=500 trivial experiments at parallelism 8,
// and peak RSS of the coordinator under 150 MB at 10,000 planned runs.
//
// Both tools run the same shell line, each in a fresh folder of the same filesystem, in
// alternating order over several rounds (creating files costs more on a filesystem that
// has just freed many, so neither always goes first); the figures are the medians. The
// filesystem matters: tmpfs creates a file in microseconds, an ext4 area that has just
// freed many inodes (say, within a minute of deleting a large folder) can take a
// millisecond each, and tmgg creates about four times the files per run that the shell
// line does (the run folder, config.json, the two logs, a lease, the result). So it
// measures in the temp folder's filesystem and in /dev/shm (the runner's own overhead);
// --dir picks one folder instead.
// Needs `npm run build` and GNU parallel (apt-get install parallel).
// Usage: node bench/local-overhead.mjs [--runs 500] [--parallelism 8] [--rounds 3]
//                                      [--rss-runs 10000] [--dir <folder>]
import { spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "500" },
    parallelism: { type: "string", default: "8" },
    rounds: { type: "string", default: "3" },
    "rss-runs": { type: "string", default: "10000" },
    dir: { type: "string" },
  },
});
const N = Number(values.runs);
const P = Number(values.parallelism);
const ROUNDS = Number(values.rounds);
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
    // The process's own peak, and that of the local runner's launcher, its child.
    let helperPeakKiB = 0;
    const peakOf = async (pid) =>
      Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    const poll = setInterval(async () => {
      try {
        peakKiB = Math.max(peakKiB, await peakOf(child.pid));
        const children = (await readFile(`/proc/${child.pid}/task/${child.pid}/children`, "utf8"))
          .split(" ")
          .filter(Boolean);
        for (const pid of children) {
          if (/launcher\.[jt]s/.test(await readFile(`/proc/${pid}/cmdline`, "utf8")))
            helperPeakKiB = Math.max(helperPeakKiB, await peakOf(pid));
        }
      } catch {}
    }, 50);
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(poll);
      if (code !== 0) reject(new Error(`${command} exited ${code}: ${stderr.slice(-2000)}`));
      else
        resolve({
          seconds: (performance.now() - start) / 1000,
          peakMiB: peakKiB / 1024,
          helperPeakMiB: helperPeakKiB / 1024,
        });
    });
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const filesystemOf = (dir) =>
  spawnSync("df", ["--output=fstype", dir], { encoding: "utf8" })
    .stdout.trim()
    .split("\n")
    .at(-1) || "unknown";
const TMGG_ARGS = [
  BIN,
  "run",
  "stage.yaml",
  "--parallelism",
  String(P),
  "--storage",
  "results",
  "--output-dir",
  "outputs",
];
const TMGG_ENV = { ...process.env, CI: "true" };

/** Medians of alternating rounds of both tools in fresh folders under `dir`. */
async function compare(dir) {
  const root = await mkdtemp(path.join(dir, "tmgg-bench-overhead-"));
  try {
    const runParallel = (round) =>
      timeCommand(
        "parallel",
        [
          "-j",
          String(P),
          `D=${root}/parallel-${round}/{}; ${WORK}`,
          ":::",
          ...Array.from({ length: N }, (_, i) => String(i)),
        ],
        { cwd: root, shell: false },
      );
    const runTmgg = async (round) => {
      const cwd = path.join(root, `tmgg-${round}`);
      await project(cwd, N);
      return timeCommand(process.execPath, TMGG_ARGS, { cwd, env: TMGG_ENV });
    };
    console.log(
      `local overhead: ${N} trivial experiments at parallelism ${P}, ${ROUNDS} rounds in ${root} (${filesystemOf(dir)})`,
    );
    const baseline = [];
    const ours = [];
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 2 === 0) {
        baseline.push(await runParallel(round));
        ours.push(await runTmgg(round));
      } else {
        ours.push(await runTmgg(round));
        baseline.push(await runParallel(round));
      }
      console.log(
        `  round ${round + 1}: GNU parallel ${baseline[round].seconds.toFixed(2)} s, tmgg run ${ours[round].seconds.toFixed(2)} s`,
      );
    }
    const baselineSeconds = median(baseline.map((r) => r.seconds));
    const oursSeconds = median(ours.map((r) => r.seconds));
    const ratio = oursSeconds / baselineSeconds;
    console.log(`  GNU parallel   ${baselineSeconds.toFixed(2)} s (median)`);
    console.log(
      `  tmgg run       ${oursSeconds.toFixed(2)} s (median; ${((oursSeconds / N) * 1000).toFixed(1)} ms per run, peak RSS ${Math.max(...ours.map((r) => r.peakMiB)).toFixed(0)} MiB, its launcher ${Math.max(...ours.map((r) => r.helperPeakMiB)).toFixed(0)} MiB)`,
    );
    console.log(
      `  ratio          ${ratio.toFixed(2)}x  (target <= 1.25x: ${ratio <= 1.25 ? "met" : "MISSED"})`,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** The coordinator's peak memory over a stage of RSS_RUNS trivial runs. */
async function memory(dir) {
  const root = await mkdtemp(path.join(dir, "tmgg-bench-memory-"));
  try {
    await project(root, RSS_RUNS);
    const large = await timeCommand(process.execPath, TMGG_ARGS, { cwd: root, env: TMGG_ENV });
    const mb = large.peakMiB * 1.048576;
    console.log(
      `coordinator memory: ${RSS_RUNS} planned runs completed in ${large.seconds.toFixed(1)} s, peak RSS ${large.peakMiB.toFixed(0)} MiB = ${mb.toFixed(0)} MB  (target < 150 MB: ${mb < 150 ? "met" : "MISSED"}); its launcher ${large.helperPeakMiB.toFixed(0)} MiB`,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

// By default on the disk that holds the temp folder (what creating each run's files
// costs there; first, before this run has deleted anything there) and in memory (tmpfs:
// the runner's own overhead).
const dirs = values.dir
  ? [values.dir]
  : [...new Set([tmpdir(), ...(filesystemOf("/dev/shm") === "tmpfs" ? ["/dev/shm"] : [])])];
for (const dir of dirs) await compare(dir);
await memory(dirs.at(-1));
