import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadBaseConfig } from "./base-config.ts";
import { ConfigError } from "./config-error.ts";
import { parseStageConfig } from "./stage-config.ts";

const stage = (configDir?: string) =>
  parseStageConfig(
    `name: s\narchitectures: [a]\ndatasets: [d]\ncommand: [node, t.mjs]\n${configDir ? `config_dir: ${configDir}\n` : ""}`,
    "stages/s.yaml",
  );

describe("loadBaseConfig", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), "tmgg-base-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("reads <config_dir>/base.yaml when it exists", async () => {
    await mkdir(path.join(root, "configs"));
    await writeFile(path.join(root, "configs", "base.yaml"), "model: {hidden: 8}\n");
    expect(await loadBaseConfig(stage("configs"), { projectRoot: root })).toEqual({
      model: { hidden: 8 },
    });
  });

  it("gives {} when the stage's config folder has no base.yaml", async () => {
    expect(await loadBaseConfig(stage(), { projectRoot: root })).toEqual({});
  });

  it("reads an explicit file, and names it when it is missing or not a mapping", async () => {
    await writeFile(path.join(root, "b.yaml"), "lr: 0.1\n");
    expect(await loadBaseConfig(stage(), { projectRoot: root, file: "b.yaml" })).toEqual({
      lr: 0.1,
    });
    await expect(loadBaseConfig(stage(), { projectRoot: root, file: "nope.yaml" })).rejects.toThrow(
      /nope\.yaml: base config not found/,
    );
    await writeFile(path.join(root, "list.yaml"), "- 1\n");
    await expect(
      loadBaseConfig(stage(), { projectRoot: root, file: "list.yaml" }),
    ).rejects.toBeInstanceOf(ConfigError);
  });
});
