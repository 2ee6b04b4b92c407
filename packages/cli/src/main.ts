/**
 * The `tmgg` command. Every error becomes output and an exit code here, in one place:
 * 0 all runs completed, 1 some runs failed, 2 bad input, 130 cancelled (Ctrl-C).
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs, promisify } from "node:util";
import {
  CloudRunnerFactory,
  ConfigError,
  ExperimentCoordinator,
  ResultStore,
  createStorage,
  estimateStageBudget,
  loadStageConfig,
  loadBaseConfig,
  parseShard,
  renderMarkdown,
  renderText,
  toDisk,
  toDiskJson,
  type BudgetAmount,
  type BudgetEstimate,
  type ExperimentResult,
  type Shard,
  type StageConfig,
  type StageResult,
} from "@tmgg/core";
import { Progress } from "./progress.ts";

export const EXIT = { ok: 0, failedRuns: 1, badInput: 2, cancelled: 130 } as const;

/** Where the command writes; tests pass their own. */
export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  cwd: string;
  /** Aborted on Ctrl-C; default: wired to SIGINT/SIGTERM of this process. */
  signal?: AbortSignal;
}

class UsageError extends Error {
  override readonly name = "UsageError";
}

const USAGE = `tmgg — hyperparameter sweeps on local GPUs or Modal, with every result kept

Usage:
  tmgg run <stage.yaml> [options]       run a stage (resumes: completed runs are skipped)
  tmgg plan <stage.yaml> [options]      show what would run, what resume would skip, and the cost
  tmgg aggregate <stage.yaml> [options] join every stored run of the stage (all shards) into its result
  tmgg report <stage> [options]         render a saved stage result
  tmgg backends                         list the backends that are installed
  tmgg help | --help                    this text

Options:
  --backend <name>        local (default) | modal | a registered backend
  --storage <uri>         a folder or s3://bucket/prefix (default ./results)
  --parallelism <n>       most runs in flight (default 4)
  --fresh                 ignore stored results and run everything again
  --base-config <file>    base config YAML (default <config_dir>/base.yaml when it exists)
  --gpu-type <type>       override the stage's gpu_type
  --timeout <seconds>     override the stage's timeout_seconds
  --shard <i/n>           run (or plan) only the i-th of n parts of the stage (1-based)
  --lease-seconds <s>     how long a claim on a run lasts without renewal (default 120)
  --max-cost-usd <usd>    override the stage's max_cost_usd (estimated; local runs cost 0)
  --max-gpu-hours <h>     override the stage's max_gpu_hours (GPUs x hours)
  --max-retries <n>       override the stage's max_retries (infrastructure failures only)
  --gpus <ids|count>      local runner: GPU ids (0,1) or a count (default: detected)
  --gpus-per-experiment <n>  local runner: GPUs per run, or a share of one (0.5, 0.25)
  --output-dir <dir>      local runner: run folders (default ./outputs)
  --format <fmt>          text (default) | markdown, for the report printed
  --json                  print the StageResult (or plan) as JSON on stdout
  --all                   plan: list every run; reports: every group (default: the
                          first 50; the stage result and --json always have them all)

Exit codes: 0 all runs completed, 1 some runs failed (aggregate: or have no result yet),
2 bad input, 130 cancelled.`;

const OPTIONS = {
  backend: { type: "string" },
  storage: { type: "string" },
  parallelism: { type: "string" },
  fresh: { type: "boolean" },
  "base-config": { type: "string" },
  "gpu-type": { type: "string" },
  timeout: { type: "string" },
  shard: { type: "string" },
  "lease-seconds": { type: "string" },
  "max-cost-usd": { type: "string" },
  "max-gpu-hours": { type: "string" },
  "max-retries": { type: "string" },
  gpus: { type: "string" },
  "gpus-per-experiment": { type: "string" },
  "output-dir": { type: "string" },
  format: { type: "string" },
  json: { type: "boolean" },
  all: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} as const;

type Flags = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>["values"];

function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${flag} must be a positive whole number, got "${value}"`);
  return n;
}

function positiveNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new UsageError(`--${flag} must be a positive number, got "${value}"`);
  return n;
}

function wholeNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < 0)
    throw new UsageError(`--${flag} must be a whole number >= 0, got "${value}"`);
  return n;
}

function shardFlag(flags: Flags): Shard | undefined {
  if (flags.shard === undefined) return undefined;
  try {
    return parseShard(flags.shard);
  } catch (error) {
    throw new UsageError(`--${(error as Error).message}`);
  }
}

function gpusPerExperiment(flags: Flags): number | undefined {
  const value = flags["gpus-per-experiment"];
  if (value === undefined) return undefined;
  const n = Number(value);
  const isWhole = Number.isInteger(n) && n >= 1;
  const isShare = n > 0 && n < 1;
  if (value.trim() === "" || !(isWhole || isShare))
    throw new UsageError(
      `--gpus-per-experiment must be a whole number of GPUs (1, 2, …) or a share of one GPU between 0 and 1 (0.5, 0.25), got "${value}"`,
    );
  return n;
}

function parseGpus(value: string | undefined): number | number[] | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  if (/^\d+(,\d+)*$/.test(value)) return value.split(",").map(Number);
  throw new UsageError(`--gpus takes device ids (0,1,3) or a count (2), got "${value}"`);
}

function format(flags: Flags): "text" | "markdown" {
  const value = flags.format ?? "text";
  if (value !== "text" && value !== "markdown")
    throw new UsageError(`--format must be text or markdown, got "${value}"`);
  return value;
}

async function commitSha(cwd: string): Promise<string | null> {
  try {
    const { stdout } = await promisify(execFile)("git", ["rev-parse", "HEAD"], { cwd });
    return stdout.trim() || null;
  } catch {
    return null;
  }
}

/** The base config: `--base-config`, else `<config_dir>/base.yaml` when it exists, else `{}`. */
function readBaseConfig(
  stage: StageConfig,
  flags: Flags,
  cwd: string,
): Promise<Record<string, unknown>> {
  const file = flags["base-config"];
  return loadBaseConfig(stage, { projectRoot: cwd, ...(file ? { file } : {}) });
}

function coordinatorFor(flags: Flags, cwd: string, sha: string | null): ExperimentCoordinator {
  const gpus = parseGpus(flags.gpus);
  const perExperiment = gpusPerExperiment(flags);
  return new ExperimentCoordinator({
    backend: flags.backend ?? "local",
    backendOptions: {
      outputDir: path.resolve(cwd, flags["output-dir"] ?? "outputs"),
      ...(gpus !== undefined ? { gpus } : {}),
      ...(perExperiment !== undefined ? { gpusPerExperiment: perExperiment } : {}),
    },
    storage: flags.storage ?? path.resolve(cwd, "results"),
    cacheDir: path.resolve(cwd, "cache"),
    projectRoot: cwd,
    commitSha: sha,
  });
}

function processSignal(io: Io): { signal: AbortSignal; dispose: () => void } {
  if (io.signal) return { signal: io.signal, dispose: () => undefined };
  const controller = new AbortController();
  let count = 0;
  const onSignal = (name: NodeJS.Signals): void => {
    count++;
    if (count === 1) {
      io.stderr.write(
        `\n${name}: cancelling the runs in flight and saving the stage result (press Ctrl-C again to quit at once)\n`,
      );
      controller.abort(new Error(`cancelled by ${name}`));
    } else {
      process.exit(EXIT.cancelled);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

function render(result: StageResult, flags: Flags, where: string): string {
  const notes = [`results: ${where}`];
  return format(flags) === "markdown"
    ? renderMarkdown(result, { notes })
    : renderText(result, { notes, ...(flags.all ? {} : { maxGroups: 50 }) });
}

/** Reads the stage; errors name the file as the user typed it, relative to where they are. */
async function readStage(stagePath: string, io: Io): Promise<{ stage: StageConfig; file: string }> {
  const absolute = path.resolve(io.cwd, stagePath);
  const file = path.isAbsolute(stagePath)
    ? stagePath
    : path.relative(process.cwd(), absolute) || stagePath;
  return { stage: await loadStageConfig(file), file };
}

/** Names the stage file in errors about what the stage refers to (config paths, hyperparameters). */
async function inStage<T>(file: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ConfigError && error.file === undefined) {
      throw new ConfigError(
        error.message,
        { file, ...(error.key ? { key: error.key } : {}) },
        { cause: error },
      );
    }
    throw error;
  }
}

/** The scale-out options of `run` from flags (absent flags leave the stage's own fields). */
function scaleOutOptions(flags: Flags): {
  shard?: Shard;
  leaseSeconds?: number;
  maxCostUsd?: number;
  maxGpuHours?: number;
  maxRetries?: number;
} {
  const shard = shardFlag(flags);
  const leaseSeconds = positiveNumber(flags["lease-seconds"], "lease-seconds");
  if (leaseSeconds !== undefined && leaseSeconds < 1)
    throw new UsageError(`--lease-seconds must be at least 1, got "${flags["lease-seconds"]}"`);
  const maxCostUsd = positiveNumber(flags["max-cost-usd"], "max-cost-usd");
  const maxGpuHours = positiveNumber(flags["max-gpu-hours"], "max-gpu-hours");
  const maxRetries = wholeNumber(flags["max-retries"], "max-retries");
  return {
    ...(shard ? { shard } : {}),
    ...(leaseSeconds !== undefined ? { leaseSeconds } : {}),
    ...(maxCostUsd !== undefined ? { maxCostUsd } : {}),
    ...(maxGpuHours !== undefined ? { maxGpuHours } : {}),
    ...(maxRetries !== undefined ? { maxRetries } : {}),
  };
}

async function run(stagePath: string, flags: Flags, io: Io): Promise<number> {
  const { stage, file } = await readStage(stagePath, io);
  const baseConfig = await readBaseConfig(stage, flags, io.cwd);
  const parallelism = positiveInt(flags.parallelism, "parallelism", 4);
  const timeoutSeconds = positiveNumber(flags.timeout, "timeout");
  const scaleOut = scaleOutOptions(flags);
  const coordinator = coordinatorFor(flags, io.cwd, await commitSha(io.cwd));
  const progress = new Progress(io.stderr);
  const { signal, dispose } = processSignal(io);
  let result: StageResult;
  try {
    result = await inStage(file, () =>
      coordinator.runStage(stage, baseConfig, {
        parallelism,
        resume: !flags.fresh,
        signal,
        onEvent: progress.onEvent,
        ...(flags["gpu-type"] ? { gpuType: flags["gpu-type"] } : {}),
        ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
        ...scaleOut,
      }),
    );
  } finally {
    progress.stop();
    dispose();
    await coordinator.close();
  }
  const store = await coordinator.store();
  const key = scaleOut.shard
    ? store.shardResultKey(stage.name, scaleOut.shard)
    : store.stageResultKey(stage.name);
  const where = `${store.storage.uri.replace(/\/$/, "")}/${key}`;
  io.stdout.write(flags.json ? toDiskJson(result) : `${render(result, flags, where)}\n`);
  if (signal.aborted) return EXIT.cancelled;
  return result.summary.completed === result.summary.totalExperiments ? EXIT.ok : EXIT.failedRuns;
}

function usd(value: number | null): string {
  return value === null ? "unpriced" : `$${value.toFixed(2)}`;
}

function gpuHours(value: number): string {
  return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} GPU-hours`;
}

function amount(value: BudgetAmount): string {
  return `${usd(value.costUsd)}, ${gpuHours(value.gpuHours)}`;
}

/** The cost of the runs a plan would start, against the stage's caps (per shard). */
function planBudget(
  stage: StageConfig,
  flags: Flags,
  toRun: number,
  stored: Iterable<ExperimentResult>,
  shard: Shard | undefined,
): { estimate: BudgetEstimate; lines: string[] } {
  const backend = flags.backend ?? "local";
  const scaleOut = scaleOutOptions(flags);
  const { estimate, model, limits, storedRuns } = estimateStageBudget(stage, toRun, stored, {
    backend,
    gpuType: flags["gpu-type"],
    timeoutSeconds: positiveNumber(flags.timeout, "timeout"),
    gpusPerRun: gpusPerExperiment(flags),
    maxCostUsd: scaleOut.maxCostUsd,
    maxGpuHours: scaleOut.maxGpuHours,
    shard,
  });
  const { gpuType, timeoutSeconds, gpus } = model;
  const free = backend === "local" ? " (local: your own GPUs cost $0)" : " (estimated)";
  const lines = [
    `cost at worst: ${toRun} runs x ${timeoutSeconds} s timeout x ${gpus} GPU on ${backend} ${gpuType} = ${amount(estimate.worstCase)}${free}`,
  ];
  if (estimate.expected && estimate.meanDurationSeconds !== null)
    lines.push(
      `cost expected: from the mean duration of ${storedRuns} stored runs (${estimate.meanDurationSeconds.toFixed(1)} s) = ${amount(estimate.expected)}`,
    );
  if (limits.maxCostUsd !== undefined || limits.maxGpuHours !== undefined) {
    const caps: string[] = [];
    if (limits.maxCostUsd !== undefined) caps.push(`max_cost_usd ${usd(limits.maxCostUsd)}`);
    if (limits.maxGpuHours !== undefined) caps.push(`max_gpu_hours ${limits.maxGpuHours}`);
    const per = shard ? ` (this shard's 1/${shard.count} share)` : "";
    lines.push(
      estimate.mayStopEarly
        ? `budget: ${caps.join(", ")}${per}: the worst case passes it, so the sweep starts a run only while the runs started could not pass it at their timeout (${estimate.runsAtOnce ?? 0} runs at once at most); the rest are reported as not started`
        : `budget: ${caps.join(", ")}${per}: every run fits even at its timeout`,
    );
  }
  return { estimate, lines };
}

async function plan(stagePath: string, flags: Flags, io: Io): Promise<number> {
  const { stage, file } = await readStage(stagePath, io);
  const baseConfig = await readBaseConfig(stage, flags, io.cwd);
  const shard = shardFlag(flags);
  const coordinator = coordinatorFor(flags, io.cwd, null);
  try {
    const { runs, skip, total, stored } = await inStage(file, () =>
      coordinator.planStage(stage, baseConfig, { resume: !flags.fresh, shard }),
    );
    const budget = planBudget(stage, flags, total - skip.size, stored.values(), shard);
    if (flags.json) {
      const rows = runs.map((r) => ({
        run_id: r.runId,
        group_id: r.groupId,
        action: skip.has(r.runId) ? "skip" : "run",
        config: r.config,
      }));
      io.stdout.write(
        `${JSON.stringify(
          {
            stage: stage.name,
            ...(shard ? { shard } : {}),
            total: runs.length,
            to_run: runs.length - skip.size,
            skipped: skip.size,
            budget: toDisk(budget.estimate),
            runs: rows,
          },
          null,
          2,
        )}\n`,
      );
      return EXIT.ok;
    }
    const groups = new Set(runs.map((r) => r.groupId)).size;
    const pairs = stage.architectures.length * stage.datasets.length;
    const headline = shard
      ? `stage ${stage.name}, shard ${shard.index} of ${shard.count}: ${total} runs, ${total - skip.size} to run, ${skip.size} already completed (skipped)`
      : stage.numTrials === undefined
        ? `stage ${stage.name}: ${runs.length} runs (${groups} configs x ${stage.seeds.length} seeds), ${runs.length - skip.size} to run, ${skip.size} already completed (skipped)`
        : `stage ${stage.name}: ${stage.search ?? "tpe"} search, ${stage.numTrials} trials x ${stage.seeds.length} seeds for each of ${pairs} architecture x dataset pairs = ${total} runs; ${groups} trials stored, ${skip.size} runs already completed (skipped), ${total - skip.size} to run (points chosen as results come in)`;
    const lines = [
      headline,
      ...(shard
        ? [
            stage.numTrials === undefined
              ? `shard ${shard.index} of ${shard.count}: the runs whose run id hashes to it (shards of a small stage can differ in size)`
              : `shard ${shard.index} of ${shard.count}: the studies of architecture x dataset pairs number ${shard.index}, ${shard.index + shard.count}, … (in the stage's order)`,
          ]
        : []),
      `gpu_type ${stage.gpuType}, timeout ${stage.timeoutSeconds} s, command: ${stage.command.join(" ")}`,
      ...budget.lines,
      "",
    ];
    const shown = flags.all ? runs : runs.slice(0, 50);
    for (const r of shown) lines.push(`${skip.has(r.runId) ? "skip" : "run "}  ${r.runId}`);
    if (shown.length < runs.length)
      lines.push(
        `… ${runs.length - shown.length} more (--all lists every run, --json gives the configs)`,
      );
    io.stdout.write(`${lines.join("\n")}\n`);
    return EXIT.ok;
  } finally {
    await coordinator.close();
  }
}

async function aggregate(stagePath: string, flags: Flags, io: Io): Promise<number> {
  const { stage, file } = await readStage(stagePath, io);
  const baseConfig = await readBaseConfig(stage, flags, io.cwd);
  const coordinator = coordinatorFor(flags, io.cwd, null);
  try {
    const result = await inStage(file, () => coordinator.aggregateStoredStage(stage, baseConfig));
    const store = await coordinator.store();
    const where = `${store.storage.uri.replace(/\/$/, "")}/${store.stageResultKey(stage.name)}`;
    io.stdout.write(flags.json ? toDiskJson(result) : `${render(result, flags, where)}\n`);
    const isComplete =
      (result.missingRuns?.length ?? 0) === 0 &&
      result.summary.completed === result.summary.totalExperiments;
    return isComplete ? EXIT.ok : EXIT.failedRuns;
  } finally {
    await coordinator.close();
  }
}

async function report(stageName: string, flags: Flags, io: Io): Promise<number> {
  const storage = await createStorage(flags.storage ?? path.resolve(io.cwd, "results"));
  try {
    const store = new ResultStore(storage);
    const result = await store.loadStageResult(stageName);
    if (!result) {
      const stages = await store.listStages();
      throw new UsageError(
        `no saved result for stage "${stageName}" in ${storage.uri}; ${stages.length ? `stages there: ${stages.join(", ")}` : "it holds no stages yet (run tmgg run <stage.yaml> first, or pass --storage)"}`,
      );
    }
    const where = `${storage.uri.replace(/\/$/, "")}/${store.stageResultKey(stageName)}`;
    io.stdout.write(flags.json ? toDiskJson(result) : `${render(result, flags, where)}\n`);
    return EXIT.ok;
  } finally {
    await storage.close?.();
  }
}

async function backends(io: Io): Promise<number> {
  const names = await CloudRunnerFactory.availableBackends();
  io.stdout.write(`${names.join("\n")}\n`);
  return EXIT.ok;
}

async function version(): Promise<string> {
  const manifest = JSON.parse(
    await readFile(new URL("../package.json", import.meta.url), "utf8"),
  ) as { version: string };
  return manifest.version;
}

/** Runs the command line; returns the exit code. Never throws, never exits. */
export async function main(
  argv: readonly string[],
  io: Io = { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() },
): Promise<number> {
  try {
    let parsed;
    try {
      parsed = parseArgs({
        args: [...argv],
        options: OPTIONS,
        allowPositionals: true,
        strict: true,
      });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const { values: flags, positionals } = parsed;
    const [command, target, ...extra] = positionals;
    if (flags.version) {
      io.stdout.write(`${await version()}\n`);
      return EXIT.ok;
    }
    if (flags.help || command === undefined || command === "help") {
      io.stdout.write(`${USAGE}\n`);
      return command === undefined && !flags.help ? EXIT.badInput : EXIT.ok;
    }
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(" ")}`);
    const needTarget = (what: string): string => {
      if (!target) throw new UsageError(`tmgg ${command} needs ${what}`);
      return target;
    };
    switch (command) {
      case "run":
        return await run(needTarget("a stage file, e.g. tmgg run stages/example.yaml"), flags, io);
      case "plan":
        return await plan(
          needTarget("a stage file, e.g. tmgg plan stages/example.yaml"),
          flags,
          io,
        );
      case "aggregate":
        return await aggregate(
          needTarget(
            "a stage file, e.g. tmgg aggregate stages/example.yaml --storage s3://bucket/sweeps",
          ),
          flags,
          io,
        );
      case "report":
        return await report(
          needTarget("a stage name, e.g. tmgg report example --storage ./results"),
          flags,
          io,
        );
      case "backends":
        return await backends(io);
      default:
        throw new UsageError(
          `unknown command "${command}"; commands: run, plan, aggregate, report, backends, help`,
        );
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`tmgg: ${error.message}\nRun tmgg help for usage.\n`);
      return EXIT.badInput;
    }
    if (error instanceof ConfigError) {
      io.stderr.write(`tmgg: ${error.message}\n`);
      return EXIT.badInput;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`tmgg: ${message}\n`);
    if (/^\[(runner-factory|storage)\]/.test(message)) return EXIT.badInput;
    return EXIT.failedRuns;
  }
}
