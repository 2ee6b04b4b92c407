/**
 * Every published package installs and works on its own: pack each with `npm pack`,
 * install the tarballs into a temporary project outside the workspace, and run a short
 * library example and the `tmgg` bin there. Slow (an npm install from the registry).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const exec = promisify(execFile);
/**
 * Runs a command without the `npm_*` variables of the `npm test` this runs under: an inner
 * npm that inherits them (workspace, prefix, lifecycle) installs into the wrong place or hangs.
 */
const CLEAN_ENV = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)),
);
async function run(
  file: string,
  args: string[],
  options: { cwd: string; timeout?: number },
): Promise<{ stdout: string }> {
  const { stdout } = await exec(file, args, { ...options, env: CLEAN_ENV, encoding: "utf8" });
  return { stdout };
}
const REPO = fileURLToPath(new URL("../../..", import.meta.url));
const PUBLISHED = ["core", "local-runner", "modal-runner", "s3-storage", "cli"];

let project: string;

beforeAll(async () => {
  project = await mkdtemp(path.join(tmpdir(), "tmgg-pack-"));
  const tarballs: string[] = [];
  for (const name of PUBLISHED) {
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", project], {
      cwd: path.join(REPO, "packages", name),
    });
    const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    expect(
      info!.files.every(
        (f) =>
          f.path === "package.json" ||
          f.path === "README.md" ||
          f.path.startsWith("dist/") ||
          f.path === "CHANGELOG.md" ||
          f.path === "LICENSE",
      ),
    ).toBe(true);
    expect(info!.files.some((f) => /\.test\./.test(f.path))).toBe(false);
    tarballs.push(path.join(project, info!.filename));
  }
  await writeFile(
    path.join(project, "package.json"),
    JSON.stringify({ name: "pack-check", private: true, type: "module" }),
  );
  try {
    await run(
      "npm",
      ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts", ...tarballs],
      { cwd: project, timeout: 240_000 },
    );
  } catch (error) {
    const { stderr = "", stdout = "" } = error as { stderr?: string; stdout?: string };
    throw new Error(`npm install of the packed packages failed:\n${stdout}\n${stderr}`, {
      cause: error,
    });
  }
}, 300_000);

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

describe("the packed packages", () => {
  it("run a stage from a plain project with @tmgg/core and @tmgg/local-runner", async () => {
    await writeFile(
      path.join(project, "train.mjs"),
      `import { readFileSync, writeFileSync } from "node:fs";
const c = JSON.parse(readFileSync(process.env.TMGG_CONFIG, "utf8"));
writeFileSync(process.env.TMGG_RUN_DIR + "/metrics.json", JSON.stringify({ val_loss: c.learning_rate * c.seed }));`,
    );
    await writeFile(path.join(project, "configs.yaml"), "");
    await writeFile(
      path.join(project, "example.mjs"),
      `import { mkdirSync, writeFileSync } from "node:fs";
import { CloudRunnerFactory, ExperimentCoordinator, StageConfig, renderText } from "@tmgg/core";
mkdirSync("configs/models", { recursive: true }); mkdirSync("configs/data", { recursive: true });
writeFileSync("configs/models/m.yaml", "hidden: 4\\n"); writeFileSync("configs/data/d.yaml", "n: 3\\n");
const stage = StageConfig.parse(\`name: packed
architectures: [models/m]
datasets: [data/d]
hyperparameter_space: {learning_rate: [0.1, 0.2]}
seeds: [1, 2]
command: [node, train.mjs]
config_dir: configs\`, "packed.yaml");
const coordinator = new ExperimentCoordinator({ backend: "local", storage: "./results" });
const result = await coordinator.runStage(stage, {}, { parallelism: 2 });
console.log(JSON.stringify({ completed: result.summary.completed, best: result.bestConfig.learning_rate, backends: await CloudRunnerFactory.availableBackends() }));
console.error(renderText(result));`,
    );
    const { stdout } = await run(process.execPath, ["example.mjs"], { cwd: project });
    expect(JSON.parse(stdout)).toEqual({ completed: 4, best: 0.1, backends: ["local", "modal"] });
  });

  it("open s3:// storage through @tmgg/s3-storage without touching the network", async () => {
    await writeFile(
      path.join(project, "s3.mjs"),
      `import { createStorage } from "@tmgg/core";
const storage = await createStorage("s3://bucket/prefix", { endpoint: "http://127.0.0.1:9", region: "us-east-1", credentials: { accessKeyId: "a", secretAccessKey: "b" } });
console.log(storage.uri);`,
    );
    const { stdout } = await run(process.execPath, ["s3.mjs"], { cwd: project });
    expect(stdout.trim()).toBe("s3://bucket/prefix");
  });

  it("install the tmgg command", async () => {
    const { stdout } = await run(path.join(project, "node_modules/.bin/tmgg"), ["--version"], {
      cwd: project,
    });
    const manifest = JSON.parse(
      await readFile(path.join(REPO, "packages/cli/package.json"), "utf8"),
    ) as { version: string };
    expect(stdout.trim()).toBe(manifest.version);
  });
});
