import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError } from "./config-error.ts";
import { StageConfig, closestKey, loadStageConfig, parseStageConfig } from "./stage-config.ts";

const VALID = `name: stage1
architectures: [models/gnn/standard]
datasets: [data/sbm_default]
hyperparameter_space:
  learning_rate: [1.0e-4, 1.0e-3]
  model.num_layers: [4, 8]
seeds: [1, 2, 3]
command: [python, train.py, "{overrides}"]
`;

function errorOf(text: string, file = "stages/s.yaml"): ConfigError {
  try {
    parseStageConfig(text, file);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("parseStageConfig", () => {
  it("reads a stage into camelCase with the original module's defaults", () => {
    const stage = parseStageConfig(VALID, "stages/stage1.yaml");
    expect(stage.name).toBe("stage1");
    expect(stage.hyperparameterSpace).toEqual({
      learning_rate: [1e-4, 1e-3],
      "model.num_layers": [4, 8],
    });
    expect(stage.gpuType).toBe("standard");
    expect(stage.timeoutSeconds).toBe(3600);
    expect(stage.objective).toEqual({ metric: "val_loss", mode: "min" });
    expect(stage.seeds).toEqual([1, 2, 3]);
  });

  it("names the file, line and column of a YAML syntax error", () => {
    const error = errorOf("name: a\narchitectures: [x\ndatasets: [y]\n");
    expect(error.file).toBe("stages/s.yaml");
    expect(error.line).toBeGreaterThanOrEqual(2);
    expect(error.column).toBeGreaterThan(0);
    expect(error.message).toMatch(/^stages\/s\.yaml:\d+:\d+: invalid YAML/);
  });

  it("names an unknown key, its line and the closest known key", () => {
    const error = errorOf(VALID.replace("seeds:", "seedz:"));
    expect(error.key).toBe("seedz");
    expect(error.message).toContain('did you mean "seeds"?');
    expect(error.line).toBe(7);
  });

  it("suggests within nested objects too", () => {
    const error = errorOf(`${VALID}objective: {metric: val_loss, mdoe: max}\n`);
    expect(error.key).toBe("objective.mdoe");
    expect(error.message).toContain('did you mean "mode"?');
  });

  it("names the key path of a wrong type", () => {
    const error = errorOf(VALID.replace("seeds: [1, 2, 3]", "seeds: [1, two, 3]"));
    expect(error.key).toBe("seeds[1]");
    expect(error.message).toContain("stages/s.yaml:7");
    expect(error.message).toMatch(/seeds\[1\] .*number/i);
  });

  it("refuses an empty grid dimension", () => {
    const error = errorOf(VALID.replace("learning_rate: [1.0e-4, 1.0e-3]", "learning_rate: []"));
    expect(error.key).toBe("hyperparameter_space.learning_rate");
    expect(error.message).toContain("at least one value");
  });

  it("refuses a range in grid mode and explains what to do", () => {
    const error = errorOf(
      VALID.replace("model.num_layers: [4, 8]", "model.dropout: {low: 0.0, high: 0.5}"),
    );
    expect(error.key).toBe("hyperparameter_space.model.dropout");
    expect(error.message).toMatch(/num_trials/);
  });

  it("accepts ranges with num_trials", () => {
    const stage = parseStageConfig(
      VALID.replace("model.num_layers: [4, 8]", "model.dropout: {low: 0.0, high: 0.5}") +
        "num_trials: 10\n",
    );
    expect(stage.numTrials).toBe(10);
  });

  it("refuses a stage name that could escape a folder", () => {
    const error = errorOf(VALID.replace("name: stage1", "name: ../../etc"));
    expect(error.key).toBe("name");
  });

  it("refuses a command given as a shell string", () => {
    const error = errorOf(
      VALID.replace('command: [python, train.py, "{overrides}"]', "command: python train.py"),
    );
    expect(error.key).toBe("command");
  });

  it("says which required key is missing", () => {
    const error = errorOf(VALID.replace(/command:.*\n/, ""));
    expect(error.message).toContain("command is required");
  });

  it("refuses an empty file and a file that is not a mapping", () => {
    expect(errorOf("").message).toContain("empty");
    expect(errorOf("- a\n- b\n").message).toContain("mapping");
  });

  it("refuses unknown GPU types and duplicate seeds", () => {
    expect(errorOf(VALID + "gpu_type: K80\n").key).toBe("gpu_type");
    expect(parseStageConfig(VALID + "gpu_type: a100-80gb:2\n").gpuType).toBe("a100-80gb:2");
    expect(errorOf(VALID.replace("seeds: [1, 2, 3]", "seeds: [1, 1]")).key).toBe("seeds");
  });
});

describe("loadStageConfig", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tmgg-stage-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a file through StageConfig.fromYaml", async () => {
    const file = path.join(dir, "stage1.yaml");
    await writeFile(file, VALID);
    expect((await StageConfig.fromYaml(file)).name).toBe("stage1");
  });

  it("names a missing file", async () => {
    const file = path.join(dir, "nope.yaml");
    await expect(loadStageConfig(file)).rejects.toThrow(`${file}: stage file not found`);
  });
});

describe("closestKey", () => {
  it("finds likely misspellings and nothing for unrelated words", () => {
    expect(closestKey("hyperparameters_space", ["hyperparameter_space", "seeds"])).toBe(
      "hyperparameter_space",
    );
    expect(closestKey("zebra", ["hyperparameter_space", "seeds"])).toBeUndefined();
  });
});
