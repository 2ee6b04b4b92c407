export {
  BaseCloudRunner,
} from "./cloud-runner.ts";
export type {
  CloudRunner,
  ExperimentSpec,
  ProgressPoint,
  RunOptions,
  RunStatus,
  SweepOptions,
} from "./cloud-runner.ts";
export { assertValidKey } from "./cloud-storage.ts";
export type { CloudStorage } from "./cloud-storage.ts";
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
  readMetricsFile,
  resolveSpec,
} from "./experiment-contract.ts";
export type { ContractPaths, MetricsReading, ResolvedSpec, RunEnding } from "./experiment-contract.ts";
export {
  GPU_TYPES,
  IDENTIFIER_PATTERN,
  experimentResultSchema,
  experimentStatuses,
  fromDisk,
  metricsSchema,
  stageConfigSchema,
  stageResultSchema,
  toDisk,
  toDiskJson,
} from "./schemas.ts";
export type {
  ExperimentResult,
  ExperimentStatus,
  Group,
  Hyperparameter,
  MetricStats,
  Metrics,
  Objective,
  StageConfig,
  StageResult,
  Summary,
} from "./schemas.ts";
