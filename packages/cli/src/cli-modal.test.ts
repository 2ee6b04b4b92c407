import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startFakeModal, type FakeModal } from "@tmgg/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../dist/bin.js", import.meta.url));
const REPO = fileURLToPath(new URL("../../..", import.meta.url));

let fake: FakeModal;
let dir: string;

beforeAll(async () => {
  fake = await startFakeModal();
  dir = await mkdtemp(path.join(tmpdir(), "tmgg-cli-modal-"));
});
afterAll(async () => {
  await fake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("tmgg run --backend modal", () => {
  it("completes the example stage against a fake Modal control plane, terminating every sandbox", async () => {
    await writeFile(path.join(dir, "no-modal.toml"), "");
    const env: NodeJS.ProcessEnv = { ...process.env, ...fake.env(), MODAL_CONFIG_PATH: path.join(dir, "no-modal.toml"), CI: "true" };
    delete env["MODAL_PROFILE"];
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [BIN, "run", "stages/example.yaml", "--backend", "modal", "--storage", path.join(dir, "results"), "--parallelism", "6", "--json"],
        { cwd: REPO, env },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
    expect(result.stderr).toContain("24 runs planned");
    expect(result.code).toBe(0);
    const stage = JSON.parse(result.stdout) as {
      backend: string;
      summary: { completed: number };
      experiments: { backend: string; gpu_type: string }[];
      estimated_cost_usd: number | null;
    };
    expect(stage.backend).toBe("modal");
    expect(stage.summary.completed).toBe(24);
    expect(stage.experiments.every((e) => e.backend === "modal" && e.gpu_type === "standard")).toBe(true);
    expect(stage.estimated_cost_usd).toBeGreaterThan(0);
    fake.assertAllTerminated();
    const saved = await readFile(path.join(dir, "results/stages/example/stage_result.json"), "utf8");
    expect(saved).toContain('"best_config"');
  }, 180_000);
});
