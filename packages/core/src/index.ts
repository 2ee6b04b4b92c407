export {
  aggregateStage,
  getDotted,
  groupResults,
  metricStats,
  rankGroups,
  summarize,
} from "./aggregate.ts";
export type { AggregateInput, GroupIdentity } from "./aggregate.ts";
export { loadBaseConfig } from "./base-config.ts";
export { BudgetGuard, estimateBudget, gpusOfRun, runCostUsd, runsUse } from "./budget.ts";
export type {
  BudgetAmount,
  BudgetEstimate,
  BudgetLimits,
  BudgetReservation,
  RunCostModel,
} from "./budget.ts";
export type { BaseConfigOptions } from "./base-config.ts";
export { BaseCloudRunner } from "./cloud-runner.ts";
export type {
  CloudRunner,
  ExperimentSpec,
  ProgressPoint,
  RunOptions,
  RunStatus,
  SweepOptions,
} from "./cloud-runner.ts";
export { assertValidKey, assertValidPrefix } from "./cloud-storage.ts";
export type { CloudStorage, PutOptions, StorageData } from "./cloud-storage.ts";
export {
  deepMerge,
  loadConfigFile,
  mergeSection,
  resolveConfigPath,
  setDotted,
} from "./config-compose.ts";
export type { ConfigFile, ConfigObject } from "./config-compose.ts";
export { ConfigError } from "./config-error.ts";
export { ExperimentCoordinator } from "./coordinator.ts";
export type {
  CoordinatorEvent,
  CoordinatorOptions,
  RunStageOptions,
  StagePlan,
} from "./coordinator.ts";
export {
  CHECKPOINTS_DIR,
  CONFIG_FILE,
  METRICS_FILE,
  PROGRESS_FILE,
  STDERR_FILE,
  STDOUT_FILE,
  TailBuffer,
  contractEnv,
  expandCommand,
  hydraOverrides,
  judgeOutcome,
  parseMetrics,
  parseProgressLine,
  readMetricsFile,
  resolveSpec,
  runFolderFiles,
} from "./experiment-contract.ts";
export type {
  ContractPaths,
  MetricsReading,
  ResolvedSpec,
  RunEnding,
} from "./experiment-contract.ts";
export {
  GPU_PRICES_AS_OF,
  MODAL_GPU_PRICES_USD_PER_HOUR,
  estimateCostUsd,
  estimateRunsCostUsd,
} from "./gpu-prices.ts";
export type { CostedRun } from "./gpu-prices.ts";
export { GPU_TIERS, GPU_TYPES, MODAL_GPU_NAMES } from "./gpu-types.ts";
export { LocalStorage } from "./local-storage.ts";
export {
  StagePlanner,
  checkShard,
  gridPoints,
  gridSize,
  parseShard,
  shardOfPair,
  shardOfRun,
} from "./plan.ts";
export type { PlanPair, PlannedRun, PlannerOptions } from "./plan.ts";
export {
  DEFAULT_MARKDOWN_MAX_CHARS,
  formatDuration,
  formatNumber,
  renderMarkdown,
  renderProgressMarkdown,
  renderText,
  stageNotes,
} from "./report.ts";
export type { ReportOptions, SweepProgress } from "./report.ts";
export { ResultStore } from "./result-store.ts";
export type { ResultStoreOptions, UnreadableResult } from "./result-store.ts";
export { canonicalJson, configHash, groupId, runId, runSlug } from "./run-id.ts";
export { DEFAULT_LEASE_SECONDS, RunLease, RunLeases, defaultLeaseOwner } from "./run-lease.ts";
export type { ClaimResult, RunLeasesOptions } from "./run-lease.ts";
export { CloudRunnerFactory } from "./runner-factory.ts";
export type { RunnerFactory } from "./runner-factory.ts";
export {
  IDENTIFIER_PATTERN,
  RUN_ID_PATTERN,
  budgetReportSchema,
  camelCase,
  experimentResultSchema,
  experimentStatuses,
  fromDisk,
  metricsSchema,
  runLeaseSchema,
  shardSchema,
  snakeCase,
  stageConfigSchema,
  stageResultSchema,
  toDisk,
  toDiskJson,
  toDiskJsonChunks,
} from "./schemas.ts";
export type {
  BudgetReport,
  ExperimentResult,
  ExperimentStatus,
  Group,
  Hyperparameter,
  MetricStats,
  Metrics,
  Objective,
  RunLeaseRecord,
  Shard,
  StageResult,
  Summary,
  Trial,
} from "./schemas.ts";
export { StageConfig, closestKey, loadStageConfig, parseStageConfig } from "./stage-config.ts";
export { OVERRIDABLE_STAGE_KEYS, applyStageOverrides } from "./stage-overrides.ts";
export { estimateStageBudget, shareOfLimits } from "./stage-budget.ts";
export type { StageBudget, StageBudgetOptions } from "./stage-budget.ts";
export { createStorage } from "./storage-uri.ts";
export { StudyScheduler } from "./study.ts";
export { createSampler, samplerKinds, searchSpaceFromStage } from "./samplers/index.ts";
export type {
  ParamSpec,
  Sampler,
  SamplerKind,
  SamplerOptions,
  SearchSpace,
  TrialRecord,
} from "./samplers/index.ts";
export { parseYaml, readYamlFile } from "./yaml-file.ts";
export type { YamlFile } from "./yaml-file.ts";
