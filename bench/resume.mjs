#!/usr/bin/env node
// Benchmark (not a test): resume's read. Writes 10,000 ExperimentResult JSONs (~1 KB each,
// `stages/<stage>/runs/<run_id>.json`) with ResultStore.saveRun into LocalStorage and into
// S3, then times ResultStore.loadRuns (list, then fetch with bounded concurrency) on each.
// Targets: local < 2 s, S3 < 10 s.
//
// S3: uses S3_ENDPOINT / S3_ACCESS_KEY / S3_SECRET_KEY (and S3_BUCKET, S3_REGION) when set;
// otherwise starts a throwaway Ceph radosgw with scripts/ceph-start.sh (apt-get install -y
// ceph-mon ceph-osd radosgw ceph-common) and stops it afterwards.
// Build first: npm run build. Usage: node bench/resume.mjs [RUNS]  (env CONCURRENCY: loadRuns' reads in flight)
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CreateBucketCommand, DeleteBucketCommand } from "@aws-sdk/client-s3";
import { LocalStorage, ResultStore } from "../packages/core/dist/index.js";
import { createS3Storage } from "../packages/s3-storage/dist/index.js";

const run = promisify(execFile);
const RUNS = Number(process.argv[2] ?? 10_000);
const STAGE = "bench_resume";
const CONCURRENCY = process.env.CONCURRENCY ? Number(process.env.CONCURRENCY) : undefined;
const SCRIPTS = fileURLToPath(new URL("../scripts/", import.meta.url));

/** A realistic result: a resolved config of a GNN run, a handful of metrics, the bookkeeping fields. */
function result(i) {
  const lr = [1e-4, 3e-4, 1e-3, 3e-3][i % 4];
  const layers = [2, 4, 8][i % 3];
  const seed = (i % 5) + 1;
  const runId = `gnn-standard_sbm-default_lr${lr}_layers${layers}_s${seed}_${i.toString(16).padStart(8, "0")}`;
  const start = Date.UTC(2025, 0, 1) + i * 60_000;
  return {
    runId,
    config: {
      model: {
        _target_: "tmgg.models.gnn.GNN",
        hidden_dim: 128,
        num_layers: layers,
        dropout: 0.1,
        activation: "relu",
      },
      data: {
        _target_: "tmgg.data.SBMDataset",
        num_nodes: 64,
        num_blocks: 4,
        p_in: 0.7,
        p_out: 0.05,
        noise_levels: [0.01, 0.05, 0.1],
      },
      trainer: { max_epochs: 100, batch_size: 32, gradient_clip: 1.0 },
      learning_rate: lr,
      weight_decay: 1e-5,
      seed,
      architecture: "models/gnn/standard",
      dataset: "data/sbm_default",
      stage: STAGE,
    },
    metrics: {
      val_loss: 0.1 + (i % 97) / 1000,
      test_loss: 0.12 + (i % 89) / 1000,
      val_accuracy: 0.9 - (i % 31) / 1000,
      epochs: 100,
    },
    checkpointPath: `stages/${STAGE}/artifacts/${runId}/attempt-1/checkpoints/last.ckpt`,
    status: "completed",
    errorMessage: null,
    durationSeconds: 312.5 + (i % 100),
    startedAt: new Date(start).toISOString(),
    completedAt: new Date(start + 312_500).toISOString(),
    attempt: 1,
    backend: "modal",
    gpuType: "A10G",
    logsPath: `stages/${STAGE}/artifacts/${runId}/attempt-1/logs`,
  };
}

async function mapLimit(items, limit, task) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await task(items[next++]);
    }),
  );
}

const seconds = (t) => (performance.now() - t) / 1000;

/** CPU seconds used so far by each of `pids` (Linux /proc; empty elsewhere). */
async function daemonCpuSeconds(pids) {
  const out = {};
  for (const [name, pid] of Object.entries(pids)) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
    if (stat === undefined) continue;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out[name] = (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
  }
  return out;
}

/** Writes every result, then times loadRuns; returns the figures. */
async function measure(label, storage, results, daemons = {}) {
  const store = new ResultStore(
    storage,
    CONCURRENCY === undefined ? {} : { concurrency: CONCURRENCY },
  );
  let t = performance.now();
  await mapLimit(results, 64, (r) => store.saveRun(STAGE, r));
  const writeSeconds = seconds(t);
  t = performance.now();
  const cpu = process.cpuUsage();
  const daemonsBefore = await daemonCpuSeconds(daemons);
  const { runs, unreadable } = await store.loadRuns(STAGE);
  const loadSeconds = seconds(t);
  const { user, system } = process.cpuUsage(cpu);
  const daemonsAfter = await daemonCpuSeconds(daemons);
  const serverCpu = Object.keys(daemonsAfter)
    .map((name) => `${name} ${(daemonsAfter[name] - (daemonsBefore[name] ?? 0)).toFixed(2)} s`)
    .join(", ");
  if (runs.size !== results.length || unreadable.length > 0) {
    throw new Error(
      `${label}: loadRuns returned ${runs.size} runs and ${unreadable.length} unreadable, expected ${results.length}`,
    );
  }
  console.log(
    `${label}: wrote ${results.length.toLocaleString()} results in ${writeSeconds.toFixed(2)} s; loadRuns read them back in ${loadSeconds.toFixed(2)} s`,
  );
  console.log(
    `  CPU during loadRuns: this process ${((user + system) / 1e6).toFixed(2)} s${serverCpu ? `; ${serverCpu}` : ""}`,
  );
  return loadSeconds;
}

/** An S3 server: the one in S3_* env, or a Ceph radosgw started here. */
async function s3Server(cleanups) {
  if (process.env.S3_ENDPOINT) {
    return {
      endpoint: process.env.S3_ENDPOINT,
      accessKeyId: process.env.S3_ACCESS_KEY,
      secretAccessKey: process.env.S3_SECRET_KEY,
      region: process.env.S3_REGION ?? "us-east-1",
      label: process.env.S3_ENDPOINT,
      pids: {},
    };
  }
  const dir = await mkdtemp(path.join(tmpdir(), "tmgg-bench-ceph-"));
  const cluster = path.join(dir, "cluster");
  cleanups.push(async () => {
    await run(path.join(SCRIPTS, "ceph-stop.sh"), [cluster]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });
  const t = performance.now();
  await run(path.join(SCRIPTS, "ceph-start.sh"), [cluster, "auto"], { timeout: 180_000 });
  const env = Object.fromEntries(
    (await readFile(path.join(cluster, "env"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  console.log(`started Ceph radosgw at ${env.S3_ENDPOINT} in ${seconds(t).toFixed(1)} s`);
  const pids = {};
  for (const file of await readdir(path.join(cluster, "run"))) {
    if (file.endsWith(".pid"))
      pids[file.slice(0, -4)] = (await readFile(path.join(cluster, "run", file), "utf8")).trim();
  }
  return {
    endpoint: env.S3_ENDPOINT,
    accessKeyId: env.S3_ACCESS_KEY,
    secretAccessKey: env.S3_SECRET_KEY,
    region: env.S3_REGION,
    label: `Ceph radosgw ${env.S3_ENDPOINT}`,
    pids,
  };
}

const cleanups = [];
const cleanup = async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
};
process.once("SIGINT", () => void cleanup().finally(() => process.exit(130)));

try {
  process.env.AWS_EC2_METADATA_DISABLED = "true";
  const results = Array.from({ length: RUNS }, (_, i) => result(i));
  const sizeBytes = Buffer.byteLength(JSON.stringify(results[0], null, 2));
  console.log(
    `resume bench: ${RUNS.toLocaleString()} results of ~${sizeBytes} bytes, loadRuns concurrency ${CONCURRENCY ?? "default"}`,
  );

  const dir = await mkdtemp(path.join(tmpdir(), "tmgg-bench-resume-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const localSeconds = await measure(`local (${dir})`, new LocalStorage(dir), results);

  const server = await s3Server(cleanups);
  const ownBucket = !process.env.S3_BUCKET;
  const bucket = process.env.S3_BUCKET ?? `tmgg-bench-${randomBytes(4).toString("hex")}`;
  const prefix = `bench-${randomBytes(4).toString("hex")}`;
  const storage = await createS3Storage(`s3://${bucket}/${prefix}`, {
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  if (ownBucket) await storage.client.send(new CreateBucketCommand({ Bucket: bucket }));
  cleanups.push(async () => {
    await mapLimit(await storage.list(""), 64, (key) => storage.delete(key));
    if (ownBucket) await storage.client.send(new DeleteBucketCommand({ Bucket: bucket }));
    await storage.close();
  });
  const s3Seconds = await measure(`S3 (${server.label})`, storage, results, server.pids);

  console.log("");
  console.log(
    `loadRuns local: ${localSeconds.toFixed(2)} s  (target < 2 s: ${localSeconds < 2 ? "met" : "MISSED"})`,
  );
  console.log(
    `loadRuns S3:    ${s3Seconds.toFixed(2)} s  (target < 10 s: ${s3Seconds < 10 ? "met" : "MISSED"})`,
  );
  console.log(`S3 / local:     ${(s3Seconds / localSeconds).toFixed(1)}x`);
  console.log(
    `machine: ${availableParallelism()} cores, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
} finally {
  await cleanup();
}
