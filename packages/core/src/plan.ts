/**
 * Sweep planning: from a stage to resolved configs with deterministic run ids.
 */
import { createHash } from "node:crypto";
import path from "node:path";
import { ConfigError } from "./config-error.ts";
import {
  loadConfigFile,
  mergeSection,
  setDotted,
  type ConfigFile,
  type ConfigObject,
} from "./config-compose.ts";
import { runIdentity } from "./run-id.ts";
import type { Shard, StageConfig } from "./schemas.ts";

/** One run of a plan: a resolved config and its identity. */
export interface PlannedRun {
  runId: string;
  groupId: string;
  architecture: string;
  dataset: string;
  /** The hyperparameter point, dotted keys as in the stage. */
  params: Record<string, unknown>;
  seed: number;
  /** The resolved config (written to `config.json`). */
  config: ConfigObject;
  /** With `num_trials`: the number of the run's trial in its study. */
  trial?: number;
}

/** An (architecture, dataset) pair with its composed config before hyperparameters. */
export interface PlanPair {
  architecture: string;
  dataset: string;
  /** base ← architecture ← dataset. */
  config: ConfigObject;
}

export interface PlannerOptions {
  /** Base config (plain object); default `{}`. */
  baseConfig?: ConfigObject;
  /** Where config paths resolve when the stage has no `config_dir`; default `exp_configs`. */
  configDir?: string;
  /** Folder relative paths resolve from; default `process.cwd()`. */
  projectRoot?: string;
}

/** A deep copy of JSON-like data (what YAML gives), much faster than structuredClone. */
function cloneJson<T>(value: T): T {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(cloneJson) as T;
  if (value instanceof Date) return new Date(value) as T;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value))
    out[key] = cloneJson((value as Record<string, unknown>)[key]);
  return out as T;
}

/** The cartesian product of the grid's hyperparameter lists, in key order. */
export function* gridPoints(
  space: StageConfig["hyperparameterSpace"],
): Generator<Record<string, unknown>, void, undefined> {
  const entries = Object.entries(space).map(([key, values]) => {
    if (!Array.isArray(values)) {
      throw new ConfigError(
        `hyperparameter_space.${key} is a range; a grid needs a list of values`,
        {
          key: `hyperparameter_space.${key}`,
        },
      );
    }
    return [key, values] as const;
  });
  const total = entries.reduce((n, [, values]) => n * values.length, 1);
  for (let index = 0; index < total; index++) {
    const point: Record<string, unknown> = {};
    let rest = index;
    for (let k = entries.length - 1; k >= 0; k--) {
      const [key, values] = entries[k]!;
      point[key] = values[rest % values.length];
      rest = Math.floor(rest / values.length);
    }
    yield Object.fromEntries(entries.map(([key]) => [key, point[key]]));
  }
}

/** Number of runs a grid stage plans (without planning them). */
export function gridSize(stage: StageConfig): number {
  const points = Object.values(stage.hyperparameterSpace).reduce<number>(
    (n, values) => n * (Array.isArray(values) ? values.length : 1),
    1,
  );
  return stage.architectures.length * stage.datasets.length * points * stage.seeds.length;
}

/**
 * Composes a stage's configs. Config files are read once, when the planner is created;
 * every error names the stage key and the file.
 *
 * @example
 * const planner = await StagePlanner.create(stage, { baseConfig: {} });
 * for (const run of planner.grid()) console.log(run.runId);
 */
export class StagePlanner {
  readonly stage: StageConfig;
  readonly configDir: string;
  readonly pairs: readonly PlanPair[];

  private constructor(stage: StageConfig, configDir: string, pairs: PlanPair[]) {
    this.stage = stage;
    this.configDir = configDir;
    this.pairs = pairs;
  }

  static async create(stage: StageConfig, options: PlannerOptions = {}): Promise<StagePlanner> {
    const projectRoot = options.projectRoot ?? process.cwd();
    const configDir = path.resolve(
      projectRoot,
      stage.configDir ?? options.configDir ?? "exp_configs",
    );
    const base = structuredClone(options.baseConfig ?? {});
    const load = async (names: readonly string[], what: string): Promise<ConfigFile[]> => {
      const files: ConfigFile[] = [];
      for (const [index, name] of names.entries()) {
        try {
          files.push(await loadConfigFile(configDir, name, what));
        } catch (error) {
          if (error instanceof ConfigError && error.file === undefined) {
            throw new ConfigError(
              `${what}s[${index}]: ${error.message}`,
              { key: `${what}s[${index}]` },
              { cause: error },
            );
          }
          throw error;
        }
      }
      return files;
    };
    const architectures = await load(stage.architectures, "architecture");
    const datasets = await load(stage.datasets, "dataset");
    const pairs: PlanPair[] = [];
    for (const architecture of architectures) {
      const withModel = mergeSection(base, "model", architecture);
      for (const dataset of datasets) {
        pairs.push({
          architecture: architecture.name,
          dataset: dataset.name,
          config: mergeSection(withModel, "data", dataset),
        });
      }
    }
    return new StagePlanner(stage, configDir, pairs);
  }

  /** The resolved run of one (pair, hyperparameter point, seed). */
  makeRun(pair: PlanPair, params: Record<string, unknown>, seed: number): PlannedRun {
    const config = cloneJson(pair.config);
    for (const [key, value] of Object.entries(params)) setDotted(config, key, cloneJson(value));
    config["seed"] = seed;
    config["architecture"] = pair.architecture;
    config["dataset"] = pair.dataset;
    config["stage"] = this.stage.name;
    const { runId, groupId } = runIdentity(
      { architecture: pair.architecture, dataset: pair.dataset, params, seed },
      config,
    );
    return {
      runId,
      groupId,
      architecture: pair.architecture,
      dataset: pair.dataset,
      params,
      seed,
      config,
    };
  }

  /** Every run of a grid stage: architectures × datasets × points × seeds. */
  *grid(): Generator<PlannedRun, void, undefined> {
    for (const pair of this.pairs) {
      for (const point of gridPoints(this.stage.hyperparameterSpace)) {
        for (const seed of this.stage.seeds) yield this.makeRun(pair, point, seed);
      }
    }
  }
}

/** Throws unless `shard` is `{index, count}` with 1 ≤ index ≤ count (whole numbers). */
export function checkShard(shard: Shard): Shard {
  const { index, count } = shard;
  if (
    !Number.isInteger(count) ||
    count < 1 ||
    !Number.isInteger(index) ||
    index < 1 ||
    index > count
  ) {
    throw new ConfigError(
      `shard ${index}/${count} is not valid: use index/count with whole numbers and 1 <= index <= count, e.g. 2/4`,
      { key: "shard" },
    );
  }
  return { index, count };
}

/**
 * Parses `i/n` (as in `--shard 2/4`): the i-th of n parts of a stage, counted from 1.
 *
 * @example parseShard("2/4") // { index: 2, count: 4 }
 */
export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!match) {
    throw new ConfigError(
      `shard "${text}" is not valid: write index/count, e.g. 2/4 for the second of four parts`,
      { key: "shard" },
    );
  }
  return checkShard({ index: Number(match[1]), count: Number(match[2]) });
}

/**
 * The shard (1…count) a run belongs to: a SHA-256 of its run id, modulo `count`. It depends
 * on the run id alone, so every job computes the same split, and adding runs to a stage
 * never moves the runs it had.
 *
 * @example shardOfRun("gnn_sbm_lr=0.01_seed=1-3fa9c2d1e0", 3) // 1, 2 or 3, always the same
 */
export function shardOfRun(runId: string, count: number): number {
  const digest = createHash("sha256").update(runId).digest();
  return (digest.readUInt32BE(0) % count) + 1;
}

/**
 * The shard (1…count) a `num_trials` study belongs to: its (architecture, dataset) pair's
 * place in the stage, dealt round-robin, so pairs spread evenly over the jobs. A study is
 * never split: its sampler learns from every trial before it.
 */
export function shardOfPair(pairIndex: number, count: number): number {
  return (pairIndex % count) + 1;
}
