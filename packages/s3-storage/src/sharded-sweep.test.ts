/**
 * A sharded sweep end to end on S3: the real `tmgg` CLI in separate processes, three
 * shards plus an overlapping sweep of the whole stage started at the same moment, all on
 * one S3 prefix (Ceph radosgw on 127.0.0.1), then `tmgg aggregate`.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { S3Storage } from "./s3-storage.ts";
import { emptyAndClose, server, serverOptions, skipReason } from "./test-server.ts";

const BIN = fileURLToPath(new URL("../../cli/dist/bin.js", import.meta.url));

/** Logs "<sweep> <run id>" when it starts (SWEEP comes from the tmgg process's env). */
const EXPERIMENT = `
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
const config = JSON.parse(readFileSync(process.env.TMGG_CONFIG, "utf8"));
appendFileSync(path.join(process.cwd(), "invocations.log"), process.env.SWEEP + " " + process.env.TMGG_RUN_ID + "\\n");
await new Promise((r) => setTimeout(r, 150));
writeFileSync(path.join(process.env.TMGG_RUN_DIR, "metrics.json"),
  JSON.stringify({ val_loss: config.learning_rate * config.model.layers + config.seed / 100 }));
`;

const STAGE = `name: sharded
architectures: [models/tiny]
datasets: [data/toy]
hyperparameter_space:
  learning_rate: [0.001, 0.01, 0.1]
  model.layers: [2, 4]
seeds: [1, 2, 3]
command: [node, train.mjs]
config_dir: configs
`;
const RUNS = 18;

interface Outcome {
  sweep: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

let root: string;
let uri: string;

// @tmgg/cli depends on this package, so it cannot be a dependency here and the task
// runner may still be building it when these tests start (Ceph takes longer to start than
// the CLI takes to build): wait a while for its bin.
beforeAll(async () => {
  for (let waited = 0; ; waited += 500) {
    try {
      await access(BIN);
      return;
    } catch {
      if (waited >= 90_000)
        throw new Error(
          `[s3-storage tests] ${BIN} is missing: build the CLI first (npx turbo run build --filter=@tmgg/cli)`,
        );
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}, 100_000);

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "tmgg-sharded-"));
  await mkdir(path.join(root, "configs/models"), { recursive: true });
  await mkdir(path.join(root, "configs/data"), { recursive: true });
  await mkdir(path.join(root, "stages"), { recursive: true });
  await writeFile(path.join(root, "configs/models/tiny.yaml"), "layers: 2\n");
  await writeFile(path.join(root, "configs/data/toy.yaml"), "n: 10\n");
  await writeFile(path.join(root, "train.mjs"), EXPERIMENT);
  await writeFile(path.join(root, "stages/sharded.yaml"), STAGE);
  if (server)
    uri = `s3://${server.bucket}/tests/sharded-${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
});
afterEach(async () => {
  if (server) await emptyAndClose(new S3Storage(uri, serverOptions(server)));
  await rm(root, { recursive: true, force: true });
});

/** `tmgg …` in the project, reaching the S3 server through the standard AWS variables. */
function tmgg(sweep: string, args: string[]): Promise<Outcome> {
  const s3 = server!;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args, "--storage", uri], {
      cwd: root,
      env: {
        ...process.env,
        CI: "true",
        SWEEP: sweep,
        AWS_ENDPOINT_URL_S3: s3.endpoint,
        AWS_REGION: s3.region,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_EC2_METADATA_DISABLED: "true",
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ sweep, code, stdout, stderr }));
  });
}

describe.skipIf(server === null)(
  server ? `a sharded sweep on ${server.endpoint}` : `sharded sweep: SKIPPED: ${skipReason}`,
  () => {
    it("runs 3 shards and an overlapping sweep at once: every run once, joined by tmgg aggregate", async () => {
      const run = ["run", "stages/sharded.yaml", "--parallelism", "2", "--json"];
      const outcomes = await Promise.all([
        tmgg("shard-1", [...run, "--shard", "1/3"]),
        tmgg("shard-2", [...run, "--shard", "2/3"]),
        tmgg("shard-3", [...run, "--shard", "3/3"]),
        tmgg("overlap", run),
      ]);
      for (const outcome of outcomes)
        expect(outcome.code, `${outcome.sweep}: ${outcome.stderr}`).toBe(0);

      // The experiments' own log: no run started twice, every run started once.
      const lines = (await readFile(path.join(root, "invocations.log"), "utf8"))
        .split("\n")
        .filter(Boolean)
        .map((line) => line.split(" ") as [string, string]);
      const started = new Map<string, string[]>();
      for (const [sweep, runId] of lines)
        started.set(runId, [...(started.get(runId) ?? []), sweep]);
      expect(started.size).toBe(RUNS);
      const twice = [...started].filter(([, sweeps]) => sweeps.length > 1);
      expect(twice).toEqual([]);

      // Each sweep's own result accounts for its part: what it ran or reused, plus what it left to others.
      for (const outcome of outcomes) {
        const result = JSON.parse(outcome.stdout) as {
          summary: { total_experiments: number; failed: number; claimed?: number };
          shard?: { index: number; count: number };
        };
        expect(result.summary.failed).toBe(0);
        const ranHere = lines.filter(([sweep]) => sweep === outcome.sweep).length;
        expect(result.summary.total_experiments).toBeGreaterThanOrEqual(ranHere);
        if (outcome.sweep === "overlap") {
          expect(result.shard).toBeUndefined();
          expect(result.summary.total_experiments + (result.summary.claimed ?? 0)).toBe(RUNS);
        }
      }

      const joined = await tmgg("aggregate", ["aggregate", "stages/sharded.yaml", "--json"]);
      expect(joined.code, joined.stderr).toBe(0);
      const result = JSON.parse(joined.stdout) as {
        summary: { total_experiments: number; completed: number };
        experiments: { run_id: string; status: string }[];
        missing_runs?: string[];
        groups: unknown[];
      };
      expect(result.summary).toMatchObject({ total_experiments: RUNS, completed: RUNS });
      expect(result.missing_runs).toBeUndefined();
      expect(result.groups).toHaveLength(6);
      const ids = result.experiments.map((e) => e.run_id);
      expect(new Set(ids).size).toBe(RUNS);
      expect([...ids].sort()).toEqual([...started.keys()].sort());

      const storage = new S3Storage(uri, serverOptions(server!));
      try {
        expect(await storage.list("stages/sharded/shards/")).toEqual([
          "stages/sharded/shards/1-of-3.json",
          "stages/sharded/shards/2-of-3.json",
          "stages/sharded/shards/3-of-3.json",
        ]);
        expect(await storage.list("stages/sharded/leases/")).toEqual([]);
        expect(await storage.get("stages/sharded/stage_result.json")).toBeDefined();
      } finally {
        await storage.close();
      }
    }, 120_000);
  },
);
