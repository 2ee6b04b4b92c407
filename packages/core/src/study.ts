/**
 * Bayesian optimization for `num_trials` (DESIGN.md section 5): one study per
 * (architecture, dataset); a trial is one hyperparameter point run over every seed, its
 * value the mean objective over them. Trials are asked for one at a time, as soon as a
 * run slot frees, with the trials in flight passed to the sampler (constant liar).
 */
import { getDotted } from "./aggregate.ts";
import { shardOfPair, type PlanPair, type PlannedRun, type StagePlanner } from "./plan.ts";
import { canonicalJson, configHash } from "./run-id.ts";
import { createSampler, type Sampler, type TrialRecord } from "./samplers/sampler.ts";
import { searchSpaceFromStage, type SearchSpace } from "./samplers/search-space.ts";
import type { ExperimentResult, Shard, StageConfig, Trial } from "./schemas.ts";

interface LiveTrial {
  number: number;
  params: Record<string, unknown>;
  runs: PlannedRun[];
  results: Map<string, ExperimentResult>;
}

interface Study {
  pair: PlanPair;
  sampler: Sampler;
  trials: LiveTrial[];
}

/** A deterministic 31-bit seed for a study of a stage. */
function studySeed(stage: StageConfig, pair: PlanPair): number {
  return (
    Number.parseInt(configHash([stage.name, pair.architecture, pair.dataset], 8), 16) & 0x7fffffff
  );
}

/** Plans a stage's trials on demand; `next()` hands out the runs to start, in order. */
export class StudyScheduler {
  readonly #stage: StageConfig;
  readonly #planner: StagePlanner;
  readonly #space: SearchSpace;
  readonly #studies: Study[];
  readonly #queue: PlannedRun[] = [];
  readonly #numTrials: number;
  #turn = 0;

  /**
   * `stored` are the stage's saved results (empty without resume): the trials they hold
   * are told to the samplers again, and their runs that did not complete are run again.
   * With `shard`, only the studies of the pairs that shard owns ({@link shardOfPair}).
   */
  constructor(
    stage: StageConfig,
    planner: StagePlanner,
    stored: ReadonlyMap<string, ExperimentResult>,
    options: { shard?: Shard } = {},
  ) {
    if (stage.numTrials === undefined) throw new Error("[coordinator] a study needs num_trials");
    this.#stage = stage;
    this.#planner = planner;
    this.#numTrials = stage.numTrials;
    this.#space = searchSpaceFromStage(stage.hyperparameterSpace);
    const kind = stage.search === "random" || stage.search === "sobol" ? stage.search : "tpe";
    const paramKeys = Object.keys(stage.hyperparameterSpace);
    const { shard } = options;
    const pairs = planner.pairs.filter(
      (_, index) => shard === undefined || shardOfPair(index, shard.count) === shard.index,
    );
    this.#studies = pairs.map((pair) => ({
      pair,
      sampler: createSampler(kind, {
        seed: studySeed(stage, pair),
        direction: stage.objective.mode === "min" ? "minimize" : "maximize",
      }),
      trials: [],
    }));

    // Resume: stored runs of each pair, grouped into their trials by config without seed,
    // numbered as they were (each result records its trial), else by when they started.
    for (const study of this.#studies) {
      const groups = new Map<
        string,
        {
          params: Record<string, unknown>;
          trial: number | undefined;
          startedAt: string;
          results: ExperimentResult[];
        }
      >();
      for (const result of stored.values()) {
        const config = result.config;
        if (
          config["architecture"] !== study.pair.architecture ||
          config["dataset"] !== study.pair.dataset
        )
          continue;
        const params = Object.fromEntries(paramKeys.map((key) => [key, getDotted(config, key)]));
        const seed = config["seed"];
        if (typeof seed !== "number" || !stage.seeds.includes(seed)) continue;
        const expected = planner.makeRun(study.pair, params, seed);
        if (
          expected.runId !== result.runId ||
          canonicalJson(expected.config) !== canonicalJson(config)
        )
          continue;
        const group = groups.get(expected.groupId) ?? {
          params,
          trial: result.trial,
          startedAt: result.startedAt,
          results: [],
        };
        if (result.startedAt < group.startedAt) group.startedAt = result.startedAt;
        if (result.trial !== undefined && (group.trial === undefined || result.trial < group.trial))
          group.trial = result.trial;
        group.results.push(result);
        groups.set(expected.groupId, group);
      }
      const ordered = [...groups.values()]
        .sort(
          (a, b) =>
            (a.trial ?? Infinity) - (b.trial ?? Infinity) ||
            a.startedAt.localeCompare(b.startedAt) ||
            canonicalJson(a.params).localeCompare(canonicalJson(b.params)),
        )
        .slice(0, this.#numTrials);
      for (const group of ordered) {
        const trial = this.#addTrial(study, group.params, group.trial);
        for (const result of group.results) trial.results.set(result.runId, result);
        for (const run of trial.runs) {
          if (trial.results.get(run.runId)?.status !== "completed") this.#queue.push(run);
        }
      }
    }
  }

  /** Runs in the whole study: trials x seeds x pairs. */
  get total(): number {
    return this.#numTrials * this.#stage.seeds.length * this.#studies.length;
  }

  /** Completed stored results that resumed trials reuse. */
  reused(): ExperimentResult[] {
    return this.runs().flatMap((run) => {
      const result = this.result(run.runId);
      return result?.status === "completed" ? [result] : [];
    });
  }

  /** Every run of every trial asked for so far (a repeated point's runs once). */
  runs(): PlannedRun[] {
    const seen = new Set<string>();
    return this.#studies.flatMap((study) =>
      study.trials.flatMap((trial) =>
        trial.runs.filter((run) => !seen.has(run.runId) && seen.add(run.runId)),
      ),
    );
  }

  /** The latest result known for a run of the study. */
  result(runId: string): ExperimentResult | undefined {
    let found: ExperimentResult | undefined;
    for (const study of this.#studies) {
      for (const trial of study.trials) found = trial.results.get(runId) ?? found;
    }
    return found;
  }

  /** Adds a trial: a resumed one keeps its stored number when free, a new one takes the next. */
  #addTrial(study: Study, params: Record<string, unknown>, stored?: number): LiveTrial {
    const used = new Set(study.trials.map((trial) => trial.number));
    const number = stored !== undefined && !used.has(stored) ? stored : Math.max(-1, ...used) + 1;
    const trial: LiveTrial = {
      number,
      params,
      runs: this.#stage.seeds.map((seed) => ({
        ...this.#planner.makeRun(study.pair, params, seed),
        trial: number,
      })),
      results: new Map(),
    };
    study.trials.push(trial);
    return trial;
  }

  #record(trial: LiveTrial): TrialRecord {
    const done = trial.runs.every((run) => trial.results.has(run.runId));
    const completed = trial.runs.every(
      (run) => trial.results.get(run.runId)?.status === "completed",
    );
    if (!done) return { number: trial.number, params: trial.params, state: "running" };
    if (!completed) return { number: trial.number, params: trial.params, state: "failed" };
    const values = trial.runs.map(
      (run) => trial.results.get(run.runId)!.metrics[this.#stage.objective.metric]!,
    );
    return {
      number: trial.number,
      params: trial.params,
      state: "complete",
      value: values.reduce((a, b) => a + b, 0) / values.length,
    };
  }

  /** The next run to start, or undefined when every trial has been started. */
  next(): PlannedRun | undefined {
    const queued = this.#queue.shift();
    if (queued) return queued;
    for (let tries = 0; tries < this.#studies.length; tries++) {
      const study = this.#studies[this.#turn++ % this.#studies.length]!;
      if (study.trials.length >= this.#numTrials) continue;
      const records = study.trials.map((trial) => this.#record(trial));
      const number = Math.max(-1, ...study.trials.map((trial) => trial.number)) + 1;
      const params = study.sampler.suggest(this.#space, records, number);
      // the same point as an earlier trial: its stored results count, missing runs run
      const earlier = new Map<string, ExperimentResult>();
      for (const trial of study.trials)
        for (const [id, result] of trial.results) earlier.set(id, result);
      const trial = this.#addTrial(study, params, number);
      for (const run of trial.runs) {
        const previous = earlier.get(run.runId);
        if (previous?.status === "completed") trial.results.set(run.runId, previous);
        else this.#queue.push(run);
      }
      return this.next();
    }
    return undefined;
  }

  /** Tells the study how a run ended. */
  record(result: ExperimentResult): void {
    for (const study of this.#studies) {
      for (const trial of study.trials) {
        if (trial.runs.some((run) => run.runId === result.runId))
          trial.results.set(result.runId, result);
      }
    }
  }

  /** Every trial with its state and value, for the StageResult. */
  trials(): Trial[] {
    return this.#studies.flatMap((study) =>
      study.trials.map((trial) => {
        const record = this.#record(trial);
        return {
          architecture: study.pair.architecture,
          dataset: study.pair.dataset,
          number: trial.number,
          params: trial.params,
          state: record.state,
          value: record.value ?? null,
          runIds: trial.runs.map((run) => run.runId),
        };
      }),
    );
  }
}
