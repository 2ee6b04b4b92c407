import { open, readdir, type FileHandle } from "node:fs/promises";
import path from "node:path";
import {
  BaseCloudRunner,
  CHECKPOINTS_DIR,
  CONFIG_FILE,
  IDENTIFIER_PATTERN,
  RUN_ID_PATTERN,
  PROGRESS_FILE,
  STDERR_FILE,
  STDOUT_FILE,
  TailBuffer,
  contractEnv,
  expandCommand,
  judgeOutcome,
  readMetricsFile,
  resolveSpec,
  type ExperimentResult,
  type ExperimentSpec,
  type ExperimentStatus,
  type MetricsReading,
  type ResolvedSpec,
  type RunOptions,
  type RunStatus,
} from "@tmgg/core";
import { GpuSlots, checkGpuAmount, detectGpus } from "./gpu-slots.ts";
import { Launcher, type LaunchFailure } from "./launcher-client.ts";
import { endGroup, signalGroup } from "./process-group.ts";
import { ProgressFollower } from "./progress-follower.ts";

export interface LocalRunnerOptions {
  /** Where run folders go (`<outputDir>/<stage>/<runId>`); default `./outputs`. */
  outputDir?: string;
  /**
   * GPUs to hand out: a list of device ids, a count (ids 0…N-1), or `"auto"` (default):
   * the ids in `CUDA_VISIBLE_DEVICES` when set, else those `nvidia-smi -L` lists. None: runs on CPU.
   */
  gpus?: readonly (number | string)[] | number | "auto";
  /**
   * GPUs per run; default: N from a `gpuType` of `"<type>:N"`, else 1. A run with gpuType
   * `cpu` takes none. A share of one GPU (0.5, 0.25, …) packs several runs onto each GPU:
   * each GPU holds shares up to 1.0, and a run sees only its GPU in `CUDA_VISIBLE_DEVICES`
   * (and its share in `TMGG_GPU_FRACTION`). Values above 1 must be whole numbers.
   */
  gpusPerExperiment?: number;
  /** Time between SIGTERM and SIGKILL when a run's process tree is ended; default 10000. */
  killGraceMs?: number;
  /** Extra environment variables for every run (the `TMGG_*` contract variables win). */
  env?: Record<string, string>;
  /** How often `metrics.jsonl` is read for progress; default 200. */
  progressIntervalMs?: number;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
const STDERR_TAIL_BYTES = 8192;

/** A run this runner holds: waiting for GPUs or running. */
interface ActiveRun {
  status: "pending" | "running";
  stop: AbortController;
  done?: Promise<ExperimentResult>;
}

/** How one run ended before judging. */
interface Finish {
  status: ExperimentStatus;
  errorMessage: string | null;
  startedAt: Date;
  logsPath: string | null;
  /** Set where the machinery failed rather than the experiment (the coordinator retries those). */
  failureKind?: "infrastructure";
}

function fail(message: string): never {
  throw new TypeError(`[local-runner] ${message}`);
}

function checkOptions(options: LocalRunnerOptions): void {
  const { outputDir, gpus, gpusPerExperiment, killGraceMs, env, progressIntervalMs } = options;
  if (outputDir !== undefined && (typeof outputDir !== "string" || outputDir === "")) {
    fail(`option outputDir must be a non-empty path, got ${JSON.stringify(outputDir)}`);
  }
  if (gpus !== undefined && gpus !== "auto") {
    if (typeof gpus === "number") {
      if (!Number.isInteger(gpus) || gpus < 0)
        fail(`option gpus must be a list of device ids, a count or "auto", got ${gpus}`);
    } else if (!Array.isArray(gpus)) {
      fail(
        `option gpus must be a list of device ids, a count or "auto", got ${JSON.stringify(gpus)}`,
      );
    } else {
      for (const id of gpus) {
        const text = String(id);
        if (
          (typeof id !== "number" && typeof id !== "string") ||
          text.trim() === "" ||
          text.includes(",")
        ) {
          fail(
            `option gpus has an invalid device id ${JSON.stringify(id)}: use numbers like 0 or ids like "GPU-…"`,
          );
        }
      }
      if (new Set(gpus.map(String)).size !== gpus.length)
        fail(`option gpus lists a device twice: ${gpus.join(", ")}`);
    }
  }
  if (gpusPerExperiment !== undefined) {
    try {
      checkGpuAmount(gpusPerExperiment, "option gpusPerExperiment");
    } catch (error) {
      throw new TypeError((error as Error).message, { cause: error });
    }
  }
  if (killGraceMs !== undefined && (typeof killGraceMs !== "number" || !(killGraceMs >= 0))) {
    fail(`option killGraceMs must be a number of milliseconds >= 0, got ${killGraceMs}`);
  }
  if (
    progressIntervalMs !== undefined &&
    (typeof progressIntervalMs !== "number" || !(progressIntervalMs > 0))
  ) {
    fail(
      `option progressIntervalMs must be a number of milliseconds > 0, got ${progressIntervalMs}`,
    );
  }
  if (env !== undefined) {
    if (env === null || typeof env !== "object") fail("option env must be an object of strings");
    for (const [name, value] of Object.entries(env)) {
      if (typeof value !== "string")
        fail(`option env.${name} must be a string, got ${JSON.stringify(value)}`);
    }
  }
}

/** GPUs one run takes: none for gpu type `cpu`, else `gpusPerExperiment`, else N of `<type>:N`, else 1. */
function gpusPerRun(gpuType: string, gpusPerExperiment: number | undefined): number {
  if (gpuType.toLowerCase() === "cpu") return 0;
  const count = /:(\d+)$/.exec(gpuType)?.[1];
  return gpusPerExperiment ?? (count === undefined ? 1 : Number(count));
}

async function readTail(file: string, maxBytes: number): Promise<string> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, "r");
    const { size } = await handle.stat();
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const tail = new TailBuffer();
    // Drop a first line cut in the middle.
    const text = buffer.toString("utf8");
    tail.push(length < size && text.includes("\n") ? text.slice(text.indexOf("\n") + 1) : text);
    return tail.toString();
  } catch {
    return "";
  } finally {
    await handle?.close();
  }
}

async function nonEmptyDir(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length > 0;
  } catch {
    return false;
  }
}

/**
 * Runs experiments as child processes on this machine (DESIGN.md section 4): each in its
 * own process group with its own run folder, GPUs handed out through
 * `CUDA_VISIBLE_DEVICES`, and its whole process tree ended on timeout or cancel.
 *
 * @example
 * const runner = new LocalRunner({ outputDir: "./outputs", gpus: [0, 1] });
 * const result = await runner.runExperiment({
 *   runId: "lr-0.001-seed-1",
 *   config: { learning_rate: 0.001, seed: 1 },
 *   command: ["python", "train.py", "{overrides}"],
 * });
 */
export class LocalRunner extends BaseCloudRunner {
  readonly name = "local";
  /** Absolute folder the run folders go under. */
  readonly outputDir: string;
  readonly killGraceMs: number;
  readonly #options: LocalRunnerOptions;
  #slots: Promise<GpuSlots> | undefined;
  readonly #active = new Map<string, ActiveRun>();
  readonly #finished = new Map<string, ExperimentStatus>();
  #launcher: Launcher | undefined;

  constructor(options: LocalRunnerOptions = {}) {
    super();
    checkOptions(options);
    this.#options = options;
    this.outputDir = path.resolve(options.outputDir ?? "outputs");
    this.killGraceMs = options.killGraceMs ?? 10_000;
  }

  /** The GPU pool, detected on first use. */
  gpuSlots(): Promise<GpuSlots> {
    this.#slots ??= (async () => {
      const { gpus = "auto" } = this.#options;
      if (gpus === "auto") return new GpuSlots(await detectGpus());
      if (typeof gpus === "number")
        return new GpuSlots(Array.from({ length: gpus }, (_, i) => String(i)));
      return new GpuSlots(gpus.map(String));
    })();
    return this.#slots;
  }

  async runExperiment(
    experiment: ExperimentSpec,
    options: RunOptions = {},
  ): Promise<ExperimentResult> {
    const spec = resolveSpec(experiment);
    if (!IDENTIFIER_PATTERN.test(spec.stage)) {
      fail(
        `stage ${JSON.stringify(spec.stage)} must contain only letters, digits, '_' and '-' (it names the run folder)`,
      );
    }
    if (!RUN_ID_PATTERN.test(spec.runId)) {
      fail(
        `run id ${JSON.stringify(spec.runId)} must start with a letter or digit and contain only letters, digits, '_', '.', '=' and '-' (it names the run folder)`,
      );
    }
    const { timeoutSeconds = 3600, signal } = options;
    if (!(timeoutSeconds > 0))
      fail(`run ${spec.runId}: timeoutSeconds must be > 0, got ${timeoutSeconds}`);
    if (this.#active.has(spec.runId)) {
      throw new Error(
        `[local-runner] run ${spec.runId} is already pending or running in this runner; wait for it or cancel it first`,
      );
    }
    // Everything up to the first await runs synchronously, so getStatus and cancel see the run at once.
    const run: ActiveRun = { status: "pending", stop: new AbortController() };
    this.#active.set(spec.runId, run);
    this.#finished.delete(spec.runId);
    const onAbort = (): void => run.stop.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) run.stop.abort();
    let status: ExperimentStatus = "failed";
    try {
      run.done = this.#run(spec, options, run);
      const result = await run.done;
      status = result.status;
      return result;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#finished.set(spec.runId, status);
      this.#active.delete(spec.runId);
    }
  }

  async #run(spec: ResolvedSpec, options: RunOptions, run: ActiveRun): Promise<ExperimentResult> {
    const { gpuType = "standard" } = options;
    const queuedAt = new Date();
    const result = (
      finish: Finish,
      reading: MetricsReading = { metrics: {} },
    ): ExperimentResult => {
      const completedAt = new Date();
      return {
        runId: spec.runId,
        config: spec.config,
        metrics: reading.metrics,
        checkpointPath: null,
        status: finish.status,
        errorMessage: finish.errorMessage,
        durationSeconds: (completedAt.getTime() - finish.startedAt.getTime()) / 1000,
        startedAt: finish.startedAt.toISOString(),
        completedAt: completedAt.toISOString(),
        attempt: spec.attempt,
        backend: this.name,
        gpuType,
        logsPath: finish.logsPath,
        ...(finish.failureKind === undefined ? {} : { failureKind: finish.failureKind }),
      };
    };
    const cancelledBeforeStart = (logsPath: string | null): ExperimentResult =>
      result({
        status: "cancelled",
        errorMessage: "cancelled by the user before it started",
        startedAt: queuedAt,
        logsPath,
      });

    if (run.stop.signal.aborted) return cancelledBeforeStart(null);
    const slots = await this.gpuSlots();
    if (run.stop.signal.aborted) return cancelledBeforeStart(null);
    let devices: string[] = [];
    let cudaVisibleDevices: string | undefined;
    let gpuFraction: number | undefined;
    const count = gpusPerRun(gpuType, this.#options.gpusPerExperiment);
    if (slots.devices.length > 0) {
      if (count > slots.devices.length) {
        return result({
          status: "failed",
          errorMessage: `[local-runner] run ${spec.runId} needs ${count} GPUs but this runner has ${slots.devices.length} (${slots.devices.join(", ")}); lower gpusPerExperiment or the ":N" of gpu_type ${JSON.stringify(gpuType)}`,
          startedAt: queuedAt,
          logsPath: null,
        });
      }
      if (count > 0) {
        const request = slots.request(count);
        const withdraw = (): void => void request.withdraw();
        run.stop.signal.addEventListener("abort", withdraw, { once: true });
        const granted = await request.devices;
        run.stop.signal.removeEventListener("abort", withdraw);
        if (granted === null) return cancelledBeforeStart(null);
        devices = granted;
        if (count < 1) gpuFraction = count;
      }
      cudaVisibleDevices = devices.join(",");
    }
    try {
      if (run.stop.signal.aborted) return cancelledBeforeStart(null);
      run.status = "running";
      return await this.#execute(
        spec,
        options,
        run,
        { cudaVisibleDevices, gpuFraction },
        result,
        cancelledBeforeStart,
      );
    } finally {
      if (devices.length > 0) slots.release(devices, count);
    }
  }

  async #execute(
    spec: ResolvedSpec,
    options: RunOptions,
    run: ActiveRun,
    gpu: { cudaVisibleDevices: string | undefined; gpuFraction: number | undefined },
    result: (finish: Finish, reading?: MetricsReading) => ExperimentResult,
    cancelledBeforeStart: (logsPath: string | null) => ExperimentResult,
  ): Promise<ExperimentResult> {
    const { timeoutSeconds = 3600 } = options;
    const runDir = path.join(this.outputDir, spec.stage, spec.runId);
    const paths = { runDir, configPath: path.join(runDir, CONFIG_FILE) };
    const [file, ...args] = expandCommand(spec, paths);
    if (file === undefined || file === "") {
      return result({
        status: "failed",
        errorMessage: `[local-runner] run ${spec.runId}: the command is empty; set the stage's command (argv)`,
        startedAt: new Date(),
        logsPath: null,
      });
    }
    if (run.stop.signal.aborted) return cancelledBeforeStart(null);
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(process.env))
      if (value !== undefined) env[name] = value;
    Object.assign(env, this.#options.env, contractEnv(spec, paths));
    if (gpu.cudaVisibleDevices !== undefined) env.CUDA_VISIBLE_DEVICES = gpu.cudaVisibleDevices;
    if (gpu.gpuFraction !== undefined) env.TMGG_GPU_FRACTION = String(gpu.gpuFraction);

    const startedAt = new Date();
    this.#launcher ??= new Launcher(this.killGraceMs);
    const launch = this.#launcher.start({
      file,
      args,
      cwd: spec.projectRoot,
      env,
      runDir,
      configPath: paths.configPath,
      configText: `${JSON.stringify(spec.config, null, 2)}\n`,
      stdoutPath: path.join(runDir, STDOUT_FILE),
      stderrPath: path.join(runDir, STDERR_FILE),
    });
    const start = await launch.started;
    if ("failure" in start)
      return result(this.#notStarted(spec, file, runDir, start.failure, startedAt));
    const { pid } = start;

    let ending: "timeout" | "cancelled" | undefined;
    let killDeadlineMs: number | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const endTree = (why: "timeout" | "cancelled"): void => {
      if (ending !== undefined) return;
      ending = why;
      killDeadlineMs = Date.now() + this.killGraceMs;
      signalGroup(pid, "SIGTERM");
      killTimer = setTimeout(() => signalGroup(pid, "SIGKILL"), this.killGraceMs);
    };
    const timeoutTimer = setTimeout(
      () => endTree("timeout"),
      Math.min(timeoutSeconds * 1000, MAX_TIMER_MS),
    );
    const onStop = (): void => endTree("cancelled");
    run.stop.signal.addEventListener("abort", onStop, { once: true });
    const follower = new ProgressFollower(
      path.join(runDir, PROGRESS_FILE),
      (point) => options.onProgress?.(spec.runId, point),
      this.#options.progressIntervalMs,
    );
    follower.start();
    try {
      options.onStart?.(spec.runId);
    } catch {
      // A broken progress display must not end the run.
    }
    if (run.stop.signal.aborted) onStop();

    const exit = await launch.exited;
    clearTimeout(timeoutTimer);
    run.stop.signal.removeEventListener("abort", onStop);
    await endGroup(pid, killDeadlineMs ?? Date.now() + this.killGraceMs);
    clearTimeout(killTimer);
    await follower.stop();
    if (exit.lost !== undefined) {
      return result({
        status: "failed",
        errorMessage: `[local-runner] run ${spec.runId}: ${exit.lost} while it ran, so its process tree was ended; it counts as an infrastructure failure, which the coordinator retries`,
        startedAt,
        logsPath: runDir,
        failureKind: "infrastructure",
      });
    }

    let reading: MetricsReading;
    try {
      reading = await readMetricsFile(runDir);
    } catch (error) {
      reading = {
        metrics: {},
        problem: `its metrics file could not be read (${(error as Error).message})`,
      };
    }
    const outcome = judgeOutcome({
      exitCode: exit.code,
      signal: exit.signal,
      timedOut: ending === "timeout",
      cancelled: ending === "cancelled",
      timeoutSeconds,
      stderrTail: await readTail(path.join(runDir, STDERR_FILE), STDERR_TAIL_BYTES),
      metrics: reading,
      objectiveMetric: spec.objectiveMetric,
    });
    const checkpoints = path.join(runDir, CHECKPOINTS_DIR);
    return {
      ...result(
        { status: outcome.status, errorMessage: outcome.errorMessage, startedAt, logsPath: runDir },
        { metrics: outcome.metrics },
      ),
      checkpointPath: (await nonEmptyDir(checkpoints)) ? checkpoints : null,
    };
  }

  /** The result of a run whose program never started, saying why and what to do. */
  #notStarted(
    spec: ResolvedSpec,
    file: string,
    runDir: string,
    failure: LaunchFailure,
    startedAt: Date,
  ): Finish {
    const run = `[local-runner] run ${spec.runId}`;
    switch (failure.stage) {
      case "prepare":
        return {
          status: "failed",
          errorMessage: `${run}: could not prepare its run folder ${runDir} (${failure.message}); check that outputDir is writable`,
          startedAt,
          logsPath: null,
        };
      case "cwd":
        return {
          status: "failed",
          errorMessage: `${run}: the project root ${spec.projectRoot} is not a folder; set projectRoot to the folder the command runs in`,
          startedAt,
          logsPath: runDir,
        };
      case "spawn": {
        const why =
          failure.code === "ENOENT"
            ? "not found; check the stage's command and PATH"
            : failure.code === "EACCES"
              ? "permission denied; make it executable or start it through its interpreter (python train.py)"
              : failure.message;
        return {
          status: "failed",
          errorMessage: `${run}: could not start ${JSON.stringify(file)} in ${spec.projectRoot}: ${why}`,
          startedAt,
          logsPath: runDir,
        };
      }
      case "launcher":
        return {
          status: "failed",
          errorMessage: `${run}: could not start: ${failure.message}`,
          startedAt,
          logsPath: null,
          failureKind: "infrastructure",
        };
    }
  }

  getStatus(runId: string): Promise<RunStatus> {
    return Promise.resolve(
      this.#active.get(runId)?.status ?? this.#finished.get(runId) ?? "unknown",
    );
  }

  cancel(runId: string): Promise<boolean> {
    const run = this.#active.get(runId);
    if (run === undefined || run.stop.signal.aborted) return Promise.resolve(false);
    run.stop.abort();
    return Promise.resolve(true);
  }

  /** Cancels every pending and running run and waits until their process trees are gone. */
  async close(): Promise<void> {
    const runs = [...this.#active.values()];
    for (const run of runs) run.stop.abort();
    await Promise.allSettled(runs.flatMap((run) => (run.done ? [run.done] : [])));
    const launcher = this.#launcher;
    this.#launcher = undefined;
    await launcher?.close();
  }
}

/**
 * Makes a LocalRunner (the factory `CloudRunnerFactory.create("local", options)` calls).
 *
 * @example
 * const runner = createLocalRunner({ outputDir: "./outputs", gpus: 2, killGraceMs: 5000 });
 */
export function createLocalRunner(options: LocalRunnerOptions = {}): LocalRunner {
  return new LocalRunner(options);
}
