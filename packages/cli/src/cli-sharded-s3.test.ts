/**
 * A sharded sweep end to end on S3: the real `tmgg` CLI in separate processes, three
 * shards plus an overlapping sweep of the whole stage started at the same moment, all on
 * one S3 prefix, then `tmgg aggregate`. The S3 server is the one @tmgg/s3-storage's tests
 * use (its vitest globalSetup, run here from this file): S3_ENDPOINT when set, else a
 * throwaway Ceph radosgw on 127.0.0.1. This test lives in the CLI package so that the
 * CLI it runs is built before it (the CLI depends on s3-storage, not the other way).
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { S3Storage } from "@tmgg/s3-storage";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runTmgg, type Outcome } from "./cli-harness.test-support.ts";

const S3_SETUP = fileURLToPath(
  new URL("../../s3-storage/src/test-server.setup.ts", import.meta.url),
);

/** What @tmgg/s3-storage's test setup provides. */
interface TestS3Server {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}
type Setup = (project: {
  provide: (key: string, value: unknown) => void;
}) => Promise<(() => Promise<void>) | undefined>;

let server: TestS3Server | null = null;
let skipReason = "";
let stopServer: (() => Promise<void>) | undefined;

// The setup module is loaded by path (it is another package's test code, not its API).
beforeAll(async () => {
  const { default: setup } = (await import(pathToFileURL(S3_SETUP).href)) as { default: Setup };
  stopServer = await setup({
    provide: (key, value) => {
      if (key === "s3") server = value as TestS3Server | null;
      if (key === "s3SkipReason") skipReason = value as string;
    },
  });
}, 240_000);
afterAll(async () => {
  await stopServer?.();
}, 120_000);

function s3Options(s3: TestS3Server) {
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  };
}

/** Deletes every key under the test's prefix and closes the storage. */
async function emptyAndClose(storage: S3Storage): Promise<void> {
  for (const key of await storage.list("")) await storage.delete(key);
  await storage.close();
}

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

interface SweepOutcome extends Outcome {
  sweep: string;
}

let root: string;
let uri: string;

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
  if (server) await emptyAndClose(new S3Storage(uri, s3Options(server)));
  await rm(root, { recursive: true, force: true });
});

/** `tmgg …` in the project, reaching the S3 server through the standard AWS variables. */
async function tmgg(sweep: string, args: string[]): Promise<SweepOutcome> {
  const s3 = server!;
  const outcome = await runTmgg(root, [...args, "--storage", uri], {
    env: {
      SWEEP: sweep,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_REGION: s3.region,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_EC2_METADATA_DISABLED: "true",
    },
  });
  return { sweep, ...outcome };
}

describe("a sharded sweep on S3", () => {
  it("runs 3 shards and an overlapping sweep at once: every run once, joined by tmgg aggregate", async (context) => {
    if (server === null) {
      context.skip(`SKIPPED: ${skipReason}`);
      return;
    }
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
    for (const [sweep, runId] of lines) started.set(runId, [...(started.get(runId) ?? []), sweep]);
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

    const storage = new S3Storage(uri, s3Options(server));
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
});
