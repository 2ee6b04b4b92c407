import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startFakeModal, type FakeModal } from "@tmgg/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runTmgg } from "./cli-harness.test-support.ts";

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
    const env: NodeJS.ProcessEnv = {
      ...fake.env(),
      MODAL_CONFIG_PATH: path.join(dir, "no-modal.toml"),
      MODAL_PROFILE: undefined,
    };
    const result = await runTmgg(
      REPO,
      [
        "run",
        "stages/example.yaml",
        "--backend",
        "modal",
        "--storage",
        path.join(dir, "results"),
        "--parallelism",
        "6",
        "--json",
      ],
      { env },
    );
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
    expect(stage.experiments.every((e) => e.backend === "modal" && e.gpu_type === "standard")).toBe(
      true,
    );
    expect(stage.estimated_cost_usd).toBeGreaterThan(0);
    fake.assertAllTerminated();
    const saved = await readFile(
      path.join(dir, "results/stages/example/stage_result.json"),
      "utf8",
    );
    expect(saved).toContain('"best_config"');
  }, 180_000);
});
