/**
 * The results layout on top of a CloudStorage (DESIGN.md section 6):
 * `stages/<stage>/runs/<run_id>.json`, `stages/<stage>/stage_result.json`,
 * `stages/<stage>/artifacts/<run_id>/<attempt-key>/…`.
 */
import { assertValidKey, type CloudStorage } from "./cloud-storage.ts";
import {
  IDENTIFIER_PATTERN,
  RUN_ID_PATTERN,
  experimentResultSchema,
  fromDisk,
  stageResultSchema,
  toDiskJson,
  toDiskJsonChunks,
  type ExperimentResult,
  type Shard,
  type StageResult,
} from "./schemas.ts";

function checkStage(stage: string): string {
  if (!IDENTIFIER_PATTERN.test(stage)) {
    throw new Error(
      `[results] invalid stage name ${JSON.stringify(stage)}: use letters, digits, '_' and '-' only`,
    );
  }
  return stage;
}

function checkRunId(runId: string): string {
  if (!RUN_ID_PATTERN.test(runId)) {
    throw new Error(`[results] invalid run id ${JSON.stringify(runId)}`);
  }
  return runId;
}

/** Runs `task` over `items` with at most `limit` in flight. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      out[index] = await task(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export interface ResultStoreOptions {
  /** Reads in flight at once when loading many results; default 32. */
  concurrency?: number;
}

/** A stored result that could not be read, kept out of resume and reported. */
export interface UnreadableResult {
  key: string;
  reason: string;
}

/** Reads and writes a stage's results in a CloudStorage. */
export class ResultStore {
  readonly storage: CloudStorage;
  readonly #concurrency: number;

  constructor(storage: CloudStorage, options: ResultStoreOptions = {}) {
    this.storage = storage;
    this.#concurrency = options.concurrency ?? 32;
  }

  runsPrefix(stage: string): string {
    return `stages/${checkStage(stage)}/runs/`;
  }

  runKey(stage: string, runId: string): string {
    return `${this.runsPrefix(stage)}${checkRunId(runId)}.json`;
  }

  stageResultKey(stage: string): string {
    return `stages/${checkStage(stage)}/stage_result.json`;
  }

  /** Where the partial StageResults of shards go (`--shard i/n`). */
  shardsPrefix(stage: string): string {
    return `stages/${checkStage(stage)}/shards/`;
  }

  /** `stages/<stage>/shards/<index>-of-<count>.json`: one shard's partial StageResult. */
  shardResultKey(stage: string, shard: Shard): string {
    return `${this.shardsPrefix(stage)}${shard.index}-of-${shard.count}.json`;
  }

  /** Where a run's artifacts go; `attemptKey` keeps every attempt's files apart. */
  artifactsPrefix(stage: string, runId: string, attemptKey: string): string {
    const prefix = `stages/${checkStage(stage)}/artifacts/${checkRunId(runId)}/${attemptKey}/`;
    assertValidKey(prefix.slice(0, -1), "results");
    return prefix;
  }

  /** Saves one run's result atomically (the commit point of a run). */
  async saveRun(stage: string, result: ExperimentResult): Promise<void> {
    await this.storage.put(this.runKey(stage, result.runId), toDiskJson(result));
  }

  async loadRun(stage: string, runId: string): Promise<ExperimentResult | undefined> {
    const key = this.runKey(stage, runId);
    const data = await this.storage.get(key);
    return data === undefined ? undefined : this.#parseRun(key, data);
  }

  #parseRun(key: string, data: Uint8Array): ExperimentResult {
    try {
      return fromDisk(experimentResultSchema, JSON.parse(Buffer.from(data).toString("utf8")));
    } catch (error) {
      throw new Error(
        `[results] ${this.storage.uri}/${key} is not a valid run result: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }

  /**
   * Every stored run result of a stage: lists once, then reads with bounded concurrency.
   * Unreadable files (a half-written file from another tool, a hand edit) are returned
   * apart, never thrown, so one bad file cannot block a resume.
   */
  async loadRuns(
    stage: string,
  ): Promise<{ runs: Map<string, ExperimentResult>; unreadable: UnreadableResult[] }> {
    const keys = (await this.storage.list(this.runsPrefix(stage))).filter(
      (key) => key.endsWith(".json") && !key.slice(this.runsPrefix(stage).length).includes("/"),
    );
    const runs = new Map<string, ExperimentResult>();
    const unreadable: UnreadableResult[] = [];
    await mapLimit(keys, this.#concurrency, async (key) => {
      const data = await this.storage.get(key);
      if (data === undefined) return;
      try {
        const result = this.#parseRun(key, data);
        runs.set(result.runId, result);
      } catch (error) {
        unreadable.push({ key, reason: (error as Error).message });
      }
    });
    return { runs, unreadable };
  }

  async saveStageResult(result: StageResult): Promise<void> {
    await this.storage.put(this.stageResultKey(result.stageName), toDiskJsonChunks(result));
  }

  /** Saves a shard's partial StageResult beside the others (its `shard` names the key). */
  async saveShardResult(result: StageResult & { shard: Shard }): Promise<void> {
    await this.storage.put(
      this.shardResultKey(result.stageName, result.shard),
      toDiskJsonChunks(result),
    );
  }

  /** Every shard's partial StageResult of a stage; unreadable ones are left out. */
  async loadShardResults(stage: string): Promise<StageResult[]> {
    const keys = (await this.storage.list(this.shardsPrefix(stage))).filter((key) =>
      /\/\d+-of-\d+\.json$/.test(key),
    );
    const results = await mapLimit(keys, this.#concurrency, async (key) => {
      try {
        return await this.#loadStageResultAt(key);
      } catch {
        return undefined;
      }
    });
    return results.filter((result): result is StageResult => result !== undefined);
  }

  async loadStageResult(stage: string): Promise<StageResult | undefined> {
    return this.#loadStageResultAt(this.stageResultKey(stage));
  }

  async #loadStageResultAt(key: string): Promise<StageResult | undefined> {
    const data = await this.storage.get(key);
    if (data === undefined) return undefined;
    try {
      return fromDisk(stageResultSchema, JSON.parse(Buffer.from(data).toString("utf8")));
    } catch (error) {
      throw new Error(
        `[results] ${this.storage.uri}/${key} is not a valid stage result: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }

  /** Stage names that have results in this storage. */
  async listStages(): Promise<string[]> {
    const keys = await this.storage.list("stages/");
    const stages = new Set<string>();
    for (const key of keys) {
      const stage = key.split("/")[1];
      if (stage && IDENTIFIER_PATTERN.test(stage)) stages.add(stage);
    }
    return [...stages].sort();
  }
}
