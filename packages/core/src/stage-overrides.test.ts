import { describe, expect, it } from "vitest";
import { ConfigError } from "./config-error.ts";
import { parseStageConfig } from "./stage-config.ts";
import { OVERRIDABLE_STAGE_KEYS, applyStageOverrides } from "./stage-overrides.ts";

const FILE = "stages/stage1.yaml";
const STAGE = parseStageConfig(
  `name: stage1
architectures: [models/gnn/standard, models/attention/multi_layer]
datasets: [data/sbm_default]
hyperparameter_space:
  learning_rate: [1.0e-4, 1.0e-3]
  model.num_layers: [4, 8]
  noise_levels: [[0.01], [0.05]]
seeds: [1, 2, 3]
gpu_type: A10G
command: [node, train.mjs]
`,
  FILE,
);

function errorOf(overrides: string[]): ConfigError {
  try {
    applyStageOverrides(STAGE, overrides, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("applyStageOverrides", () => {
  it("sets stage fields: seeds as a list, timeout and gpu type as one value", () => {
    const stage = applyStageOverrides(
      STAGE,
      ["seeds=1,2", "timeout_seconds=60", "gpu_type=T4"],
      FILE,
    );
    expect(stage.seeds).toEqual([1, 2]);
    expect(stage.timeoutSeconds).toBe(60);
    expect(stage.gpuType).toBe("T4");
    expect(stage.command).toEqual(["node", "train.mjs"]);
  });

  it("sets the budget caps and the retries of infrastructure failures", () => {
    const stage = applyStageOverrides(
      STAGE,
      ["max_cost_usd=2.5", "max_gpu_hours=0.5", "max_retries=2"],
      FILE,
    );
    expect(stage.maxCostUsd).toBe(2.5);
    expect(stage.maxGpuHours).toBe(0.5);
    expect(stage.maxRetries).toBe(2);
    expect(STAGE.maxCostUsd).toBeUndefined();
  });

  it("narrows a hyperparameter to one value or a comma list, numbers parsed like YAML", () => {
    const stage = applyStageOverrides(STAGE, ["learning_rate=1e-3", "model.num_layers=2,16"], FILE);
    expect(stage.hyperparameterSpace.learning_rate).toEqual([0.001]);
    expect(stage.hyperparameterSpace["model.num_layers"]).toEqual([2, 16]);
    expect(stage.hyperparameterSpace.noise_levels).toEqual([[0.01], [0.05]]);
  });

  it("takes a YAML flow list for values that are lists themselves", () => {
    const stage = applyStageOverrides(STAGE, ["noise_levels=[[0.1],[0.2,0.3]]"], FILE);
    expect(stage.hyperparameterSpace.noise_levels).toEqual([[0.1], [0.2, 0.3]]);
  });

  it("keeps strings and booleans as typed", () => {
    const stage = applyStageOverrides(
      STAGE,
      ["architectures=models/gnn/standard", "model.num_layers=true,deep"],
      FILE,
    );
    expect(stage.architectures).toEqual(["models/gnn/standard"]);
    expect(stage.hyperparameterSpace["model.num_layers"]).toEqual([true, "deep"]);
  });

  it("leaves the input stage unchanged and returns it as is without overrides", () => {
    applyStageOverrides(STAGE, ["seeds=7", "learning_rate=0.5"], FILE);
    expect(STAGE.seeds).toEqual([1, 2, 3]);
    expect(STAGE.hyperparameterSpace.learning_rate).toEqual([1e-4, 1e-3]);
    expect(applyStageOverrides(STAGE, [], FILE)).toBe(STAGE);
  });

  it("refuses an unknown key, naming the closest known one and the file", () => {
    const error = errorOf(["lerning_rate=1e-3"]);
    expect(error.message).toContain(
      `${FILE}: unknown override key "lerning_rate"; did you mean "learning_rate"?`,
    );
    expect(error.key).toBe("lerning_rate");
    expect(errorOf(["seedz=1"]).message).toContain('did you mean "seeds"?');
    expect(errorOf(["model.num_layer=4"]).message).toContain('did you mean "model.num_layers"?');
  });

  it("refuses stage fields that only the file may set, such as the command", () => {
    const error = errorOf(["command=rm"]);
    expect(error.message).toContain('"command" cannot be overridden');
    for (const key of OVERRIDABLE_STAGE_KEYS) expect(error.message).toContain(key);
    expect(errorOf(["config_dir=/etc"]).message).toContain('"config_dir" cannot be overridden');
  });

  it("refuses tokens that are not key=value, empty values and keys given twice", () => {
    expect(errorOf(["seeds"]).message).toContain('override "seeds" is not key=value');
    expect(errorOf(["seeds=1,"]).message).toContain("has an empty value");
    expect(errorOf(["seeds=1", "seeds=2"]).message).toContain('"seeds" is given twice');
  });

  it("validates the result like a stage file: bad seeds, GPU types and timeouts are refused", () => {
    const seeds = errorOf(["seeds=1,1"]);
    expect(seeds.message).toContain("seeds has duplicates");
    expect(seeds.message).toMatch(
      /^stages\/stage1\.yaml: the overrides seeds=1,1 make the stage invalid/,
    );
    expect(errorOf(["seeds=one"]).message).toContain("seeds");
    expect(errorOf(["gpu_type=TPU"]).message).toContain("gpu_type must be one of");
    expect(errorOf(["timeout_seconds=-5"]).key).toBe("timeout_seconds");
    expect(errorOf(["max_cost_usd=0"]).key).toBe("max_cost_usd");
    expect(errorOf(["max_gpu_hours=lots"]).key).toBe("max_gpu_hours");
    expect(errorOf(["max_retries=1.5"]).key).toBe("max_retries");
    expect(errorOf(["max_retries=11"]).message).toContain("max_retries");
  });
});
