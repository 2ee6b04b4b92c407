/** StageResult aggregation: summary counts, groups over seeds, best config by mean objective. */
import { groupId } from "./run-id.ts";
import type {
  BudgetReport,
  ExperimentResult,
  Group,
  MetricStats,
  Objective,
  Shard,
  StageResult,
  Summary,
  Trial,
} from "./schemas.ts";

/** Reads a dotted key (`model.num_layers`) from a config. */
export function getDotted(config: Record<string, unknown>, dottedKey: string): unknown {
  let node: unknown = config;
  for (const part of dottedKey.split(".")) {
    if (node === null || typeof node !== "object" || Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** n, mean, sample std (0 for one value), min, max. */
export function metricStats(values: readonly number[]): MetricStats {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  return { n, mean, std: Math.sqrt(variance), min: Math.min(...values), max: Math.max(...values) };
}

export function summarize(experiments: readonly ExperimentResult[], skipped: number): Summary {
  const count = (status: ExperimentResult["status"]): number =>
    experiments.filter((e) => e.status === status).length;
  const total = experiments.length;
  const completed = count("completed");
  const totalDuration = experiments.reduce((sum, e) => sum + e.durationSeconds, 0);
  const ran = experiments.filter((e) => e.durationSeconds > 0).length;
  return {
    totalExperiments: total,
    completed,
    failed: count("failed"),
    timeout: count("timeout"),
    cancelled: count("cancelled"),
    skipped,
    successRate: total === 0 ? 0 : completed / total,
    meanDurationSeconds: ran === 0 ? 0 : totalDuration / ran,
    totalDurationSeconds: totalDuration,
  };
}

/** A run's group as its plan names it (a `PlannedRun` has these fields). */
export interface GroupIdentity {
  groupId: string;
  architecture: string;
  dataset: string;
  params: Record<string, unknown>;
}

/**
 * Groups completed runs by their config without the seed. `paramKeys` are the stage's
 * hyperparameter names (dotted), read back from each config. `planned` (by run id) gives
 * the groups the plan already worked out, so that a large stage is not hashed twice; a
 * run id names its config, so a planned run's group is the one its config would give.
 */
export function groupResults(
  experiments: readonly ExperimentResult[],
  paramKeys: readonly string[],
  planned?: ReadonlyMap<string, GroupIdentity>,
): Group[] {
  const byId = new Map<
    string,
    { group: Omit<Group, "metrics" | "n">; values: Map<string, number[]> }
  >();
  for (const experiment of experiments) {
    if (experiment.status !== "completed") continue;
    const config = experiment.config;
    const identity = planned?.get(experiment.runId);
    const architecture =
      identity?.architecture ??
      (typeof config["architecture"] === "string" ? config["architecture"] : "");
    const dataset =
      identity?.dataset ?? (typeof config["dataset"] === "string" ? config["dataset"] : "");
    const params = Object.fromEntries(
      paramKeys.map((key) => [key, identity ? identity.params[key] : getDotted(config, key)]),
    );
    const id = identity?.groupId ?? groupId({ architecture, dataset, params }, config);
    let entry = byId.get(id);
    if (!entry) {
      entry = {
        group: { groupId: id, architecture, dataset, params, runIds: [] },
        values: new Map(),
      };
      byId.set(id, entry);
    }
    entry.group.runIds.push(experiment.runId);
    for (const [metric, value] of Object.entries(experiment.metrics)) {
      const list = entry.values.get(metric) ?? [];
      list.push(value);
      entry.values.set(metric, list);
    }
  }
  return [...byId.values()].map(({ group, values }) => ({
    ...group,
    n: group.runIds.length,
    metrics: Object.fromEntries([...values].map(([metric, list]) => [metric, metricStats(list)])),
  }));
}

/** Sorts groups best first by the objective's mean (ties: lower std); groups without it last. */
export function rankGroups(groups: readonly Group[], objective: Objective): Group[] {
  const sign = objective.mode === "min" ? 1 : -1;
  return [...groups].sort((a, b) => {
    const sa = a.metrics[objective.metric];
    const sb = b.metrics[objective.metric];
    if (!sa || !sb) return sa ? -1 : sb ? 1 : 0;
    return sign * (sa.mean - sb.mean) || sa.std - sb.std || a.groupId.localeCompare(b.groupId);
  });
}

export interface AggregateInput {
  stageName: string;
  experiments: readonly ExperimentResult[];
  objective: Objective;
  paramKeys: readonly string[];
  /** The plan's runs by run id: their groups are not worked out again. */
  planned?: ReadonlyMap<string, GroupIdentity>;
  startedAt: string;
  completedAt?: string;
  skipped?: number;
  commitSha?: string | null;
  backend: string;
  gpuType?: string;
  estimatedCostUsd?: number | null;
  trials?: Trial[];
  /** The shard this result covers. */
  shard?: Shard;
  /** Runs left to other sweeps (their leases were held); counted in `summary.claimed`. */
  claimedRuns?: readonly string[];
  /** Runs of the plan without a stored result. */
  missingRuns?: readonly string[];
  budget?: BudgetReport;
}

/** Builds the StageResult from every run of a stage. */
export function aggregateStage(input: AggregateInput): StageResult {
  const objective = input.objective;
  const groups = rankGroups(
    groupResults(input.experiments, input.paramKeys, input.planned),
    objective,
  );
  const best = groups[0]?.metrics[objective.metric] ? groups[0] : undefined;
  let bestConfig: Record<string, unknown> | null = null;
  let bestRun: string | null = null;
  if (best) {
    const runs = input.experiments.filter((e) => best.runIds.includes(e.runId));
    const sign = objective.mode === "min" ? 1 : -1;
    runs.sort(
      (a, b) => sign * ((a.metrics[objective.metric] ?? 0) - (b.metrics[objective.metric] ?? 0)),
    );
    bestRun = runs[0]?.runId ?? null;
    const { seed: _seed, ...config } = runs[0]?.config ?? {};
    bestConfig = config;
  }
  return {
    stageName: input.stageName,
    experiments: [...input.experiments],
    bestConfig,
    bestMetrics: best
      ? Object.fromEntries(Object.entries(best.metrics).map(([k, s]) => [k, s.mean]))
      : null,
    summary: {
      ...summarize(input.experiments, input.skipped ?? 0),
      ...(input.claimedRuns?.length ? { claimed: input.claimedRuns.length } : {}),
    },
    startedAt: input.startedAt,
    completedAt: input.completedAt ?? new Date().toISOString(),
    objective,
    groups,
    bestGroup: best?.groupId ?? null,
    bestRun,
    commitSha: input.commitSha ?? null,
    backend: input.backend,
    gpuType: input.gpuType ?? "standard",
    estimatedCostUsd: input.estimatedCostUsd ?? null,
    ...(input.trials ? { trials: input.trials } : {}),
    ...(input.shard ? { shard: { ...input.shard } } : {}),
    ...(input.claimedRuns?.length ? { claimedRuns: [...input.claimedRuns] } : {}),
    ...(input.missingRuns?.length ? { missingRuns: [...input.missingRuns] } : {}),
    ...(input.budget ? { budget: input.budget } : {}),
  };
}
