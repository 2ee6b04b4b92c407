#!/usr/bin/env node
// Benchmark (not a test): planning a 100,000-config grid and resuming over 10,000 stored
// local results. Prints the figures; targets from issue 2: plan < 2 s, resume < 2 s.
// Build first: npm run build. Usage: node bench/plan.mjs
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ExperimentCoordinator, LocalStorage, ResultStore, StagePlanner, parseStageConfig } from "../packages/core/dist/index.js";

const root = await mkdtemp(path.join(tmpdir(), "tmgg-bench-plan-"));
try {
  await mkdir(path.join(root, "configs/models"), { recursive: true });
  await mkdir(path.join(root, "configs/data"), { recursive: true });
  for (const m of ["gnn", "attention"]) await writeFile(path.join(root, `configs/models/${m}.yaml`), `_target_: ${m}\nhidden: 64\nnum_layers: 2\n`);
  for (const d of ["sbm_a", "sbm_b"]) await writeFile(path.join(root, `configs/data/${d}.yaml`), `num_nodes: 64\np_in: 0.7\np_out: 0.1\n`);
  const base = { trainer: { epochs: 100, batch_size: 32, optimizer: { name: "adam", betas: [0.9, 0.999] } }, logging: { every: 10 } };

  // 2 architectures x 2 datasets x (10 x 10 x 5 x 5) x 10 seeds = 100,000 runs
  const big = parseStageConfig(`name: big
architectures: [models/gnn, models/attention]
datasets: [data/sbm_a, data/sbm_b]
hyperparameter_space:
  learning_rate: [${Array.from({ length: 10 }, (_, i) => (i + 1) * 1e-4).join(", ")}]
  model.hidden: [${Array.from({ length: 10 }, (_, i) => 16 * (i + 1)).join(", ")}]
  model.num_layers: [1, 2, 3, 4, 5]
  model.dropout: [0.0, 0.1, 0.2, 0.3, 0.4]
seeds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
command: [python, train.py]
config_dir: configs
`);
  let t = performance.now();
  const planner = await StagePlanner.create(big, { baseConfig: base, projectRoot: root });
  let count = 0;
  const ids = new Set();
  for (const run of planner.grid()) {
    count++;
    ids.add(run.runId);
  }
  const planSeconds = (performance.now() - t) / 1000;
  console.log(`plan: ${count.toLocaleString()} configs (${ids.size.toLocaleString()} distinct run ids) in ${planSeconds.toFixed(2)} s  (target < 2 s: ${planSeconds < 2 ? "met" : "MISSED"})`);

  // 10,000 stored results, then a resume plan (list + read + compare) over them
  const tenK = parseStageConfig(`name: tenk
architectures: [models/gnn, models/attention]
datasets: [data/sbm_a]
hyperparameter_space:
  learning_rate: [${Array.from({ length: 10 }, (_, i) => (i + 1) * 1e-4).join(", ")}]
  model.hidden: [${Array.from({ length: 10 }, (_, i) => 16 * (i + 1)).join(", ")}]
  model.num_layers: [1, 2, 3, 4, 5]
seeds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
command: [python, train.py]
config_dir: configs
`);
  const storageDir = path.join(root, "results");
  const store = new ResultStore(new LocalStorage(storageDir));
  const runs = [...(await StagePlanner.create(tenK, { baseConfig: base, projectRoot: root })).grid()];
  const now = new Date().toISOString();
  for (let i = 0; i < runs.length; i += 200) {
    await Promise.all(
      runs.slice(i, i + 200).map((run) =>
        store.saveRun("tenk", {
          runId: run.runId, config: run.config, metrics: { val_loss: Math.random(), test_loss: Math.random() },
          checkpointPath: null, status: "completed", errorMessage: null, durationSeconds: 12.5,
          startedAt: now, completedAt: now, attempt: 1, backend: "local", gpuType: "standard", logsPath: null,
        }),
      ),
    );
  }
  t = performance.now();
  const coordinator = new ExperimentCoordinator({ backend: { name: "none" }, storage: storageDir, projectRoot: root });
  const plan = await coordinator.planStage(tenK, base);
  const resumeSeconds = (performance.now() - t) / 1000;
  console.log(`resume: ${plan.skip.size.toLocaleString()} of ${plan.runs.length.toLocaleString()} stored local results found completed in ${resumeSeconds.toFixed(2)} s  (target < 2 s: ${resumeSeconds < 2 ? "met" : "MISSED"})`);
} finally {
  await rm(root, { recursive: true, force: true });
}
