/**
 * ModalRunner: each experiment in its own Modal sandbox on the requested GPU. The
 * sandbox starts with no command of its own; the project goes in as a tarball, the
 * experiment runs with `exec` under the experiment contract, metrics and logs come back,
 * and the sandbox is terminated however the run ends.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  BaseCloudRunner,
  CHECKPOINTS_DIR,
  CONFIG_FILE,
  METRICS_FILE,
  PROGRESS_FILE,
  STDERR_FILE,
  STDOUT_FILE,
  TailBuffer,
  contractEnv,
  expandCommand,
  judgeOutcome,
  parseMetrics,
  parseProgressLine,
  resolveSpec,
  type ContractPaths,
  type ExperimentResult,
  type ExperimentSpec,
  type ProgressPoint,
  type ResolvedSpec,
  type RunEnding,
  type RunOptions,
  type RunStatus,
} from "@tmgg/core";
import {
  InvalidError,
  ModalClient,
  NotFoundError,
  SandboxFilesystemNotFoundError,
  type App,
  type Image,
  type Sandbox,
  type SandboxCreateParams,
  type Secret,
  type Volume,
} from "modal";
import { extract } from "tar";
import { z } from "zod";
import { resolveModalCredentials } from "./credentials.ts";
import { modalGpu } from "./gpu-type.ts";
import { InfrastructureError, describeInfrastructureFailure } from "./infrastructure-error.ts";
import { DEFAULT_MAX_UPLOAD_BYTES, packProject, type PackedProject } from "./project-tarball.ts";

/** The registry image sandboxes run when `image` is not given. */
export const DEFAULT_IMAGE = "python:3.12-slim";

/** Told about every sandbox the runner creates, so a caller can save its id. */
export interface SandboxEvent {
  sandboxId: string;
  runId: string;
}

/** What `sandbox.poll()` answers for a sandbox that reached its own timeout. */
const SANDBOX_TIMEOUT_EXIT = 124;

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.=-]*$/;

const optionsSchema = z.object({
  /** Modal app the sandboxes belong to. */
  appName: z.string().min(1).default("tmgg-sweep"),
  /** Modal environment; default the profile's. */
  environment: z.string().min(1).optional(),
  /** Modal token; default MODAL_TOKEN_ID / MODAL_TOKEN_SECRET, else the Modal profile. */
  tokenId: z.string().min(1).optional(),
  tokenSecret: z.string().min(1).optional(),
  /** Registry image tag the sandboxes start from. */
  image: z.string().min(1).default(DEFAULT_IMAGE),
  /** Dockerfile commands run on top of `image` once (Modal caches the result), e.g. `RUN pip install torch`. */
  buildCommands: z.array(z.string().min(1)).default([]),
  /** Names of Modal secrets whose keys become env vars in every sandbox. */
  secrets: z.array(z.string().min(1)).default([]),
  /** Env vars set in every sandbox. */
  env: z.record(z.string(), z.string()).default({}),
  /** Modal volumes to mount: volume name → absolute mount path (created when missing). */
  volumes: z
    .record(z.string(), z.string().startsWith("/", { message: "must be an absolute mount path" }))
    .default({}),
  /** CPU cores and memory (MiB) to request per sandbox; default Modal's. */
  cpu: z.number().positive().optional(),
  memoryMiB: z.int().positive().optional(),
  /** Where local copies of each run's folder go: `<cacheDir>/modal/<stage>/<runId>/`. */
  cacheDir: z.string().min(1).default("./cache"),
  /** Copy `$TMGG_RUN_DIR/checkpoints/` back into the local run folder. */
  downloadCheckpoints: z.boolean().default(false),
  /** Infrastructure failures (no GPU, lost sandbox, flaky network) retried per run. */
  maxInfraRetries: z.int().min(0).default(2),
  /** Wait before the first infrastructure retry; doubles each time. */
  infraRetryDelayMs: z.number().min(0).default(10_000),
  /** Extra patterns left out of the project upload (see DEFAULT_UPLOAD_IGNORE). */
  uploadIgnore: z.array(z.string().min(1)).default([]),
  /** Most bytes the project upload may add up to, before compression. */
  maxUploadBytes: z.number().positive().default(DEFAULT_MAX_UPLOAD_BYTES),
  /** Folder inside the sandbox holding the project (`project/`) and run folders (`runs/<runId>/`). */
  remoteDir: z
    .string()
    .regex(/^\/[^\s]*[^/\s]$/, { message: "must be an absolute path without a trailing /" })
    .default("/tmgg"),
  /** Added to `timeout_seconds` for Modal's own sandbox timeout: time to upload, set up and read back. */
  timeoutMarginSeconds: z.int().min(0).default(600),
  /** How often `metrics.jsonl` is read while a run goes, for `onProgress`; 0 reads it only at the end. */
  progressIntervalMs: z.number().min(0).default(15_000),
  /** Called with each sandbox id the moment it exists (the GitHub action saves them for its post step). */
  onSandbox: z
    .custom<(event: SandboxEvent) => void>((value) => typeof value === "function")
    .optional(),
  /** The Modal SDK's log level. */
  logLevel: z.enum(["debug", "info", "warn", "error"]).optional(),
});

/** Options of {@link createModalRunner}; every field is optional. */
export type ModalRunnerOptions = z.input<typeof optionsSchema>;
type ResolvedOptions = z.output<typeof optionsSchema>;

function parseOptions(options: unknown): ResolvedOptions {
  const parsed = optionsSchema.safeParse(options ?? {});
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map(
    (issue) => `option "${issue.path.join(".")}" ${issue.message}`,
  );
  throw new TypeError(`[modal-runner] invalid options: ${issues.join("; ")}`);
}

interface Setup {
  app: App;
  image: Image;
  secrets: Secret[];
  volumes: Record<string, Volume>;
}

interface RunState {
  status: RunStatus;
  abort: AbortController;
  done: boolean;
}

/** Where things live inside the sandbox for one run. */
interface RemoteLayout extends ContractPaths {
  projectDir: string;
  tarball: string;
}

type AttemptOutcome =
  | { kind: "ended"; ending: RunEnding; checkpointPath: string | null }
  | { kind: "cancelled" }
  | { kind: "infrastructure"; message: string; retryable: boolean };

interface Attempt {
  outcome: AttemptOutcome;
  /** When the sandbox was ready, if one was. */
  readyAt: Date | undefined;
  /** How long the sandbox was alive (what Modal bills), ms. */
  aliveMs: number;
}

class Cancelled extends Error {
  override name = "Cancelled";
}

/** Rejects with {@link Cancelled} once `signal` aborts; a late result of `promise` is handed to `onLate`. */
function unlessAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  onLate?: (value: T) => void,
): Promise<T> {
  if (signal.aborted) {
    promise.then(onLate, () => {});
    return Promise.reject(new Cancelled());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      promise.then(onLate, () => {});
      reject(new Cancelled());
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) return;
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Resolves true after `ms`, or false as soon as `signal` aborts. */
function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Waits for `promise` at most `ms`; never rejects. */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** Emits each complete line of `metrics.jsonl` once, in order. */
class ProgressLines {
  #seen = 0;
  readonly #emit: (point: ProgressPoint) => void;

  constructor(emit: (point: ProgressPoint) => void) {
    this.#emit = emit;
  }

  /** `text` is the whole file so far; `isFinal` when the experiment has ended (a last line without "\n" counts). */
  feed(text: string, isFinal: boolean): void {
    const lines = text.split("\n");
    const last = lines.pop();
    if (isFinal && last) lines.push(last);
    for (let i = this.#seen; i < lines.length; i++) {
      const point = parseProgressLine(lines[i]!);
      if (point) this.#emit(point);
    }
    this.#seen = Math.max(this.#seen, lines.length);
  }
}

async function writeChunk(file: WriteStream, chunk: string): Promise<void> {
  if (file.writableEnded || file.destroyed) return;
  if (!file.write(chunk)) {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        file.off("drain", done);
        file.off("close", done);
        resolve();
      };
      file.on("drain", done);
      file.on("close", done);
    });
  }
}

async function pump(
  stream: AsyncIterable<string>,
  file: WriteStream,
  tail?: TailBuffer,
): Promise<void> {
  for await (const chunk of stream) {
    tail?.push(chunk);
    await writeChunk(file, chunk);
  }
}

function closeFile(file: WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (file.closed) return resolve();
    file.end(() => resolve());
    file.once("error", () => resolve());
  });
}

/**
 * Runs experiments in Modal sandboxes. Build it with {@link createModalRunner}; it
 * passes the CloudRunner contract (`runSweep` keeps at most `parallelism` sandboxes).
 *
 * @example
 * const runner = createModalRunner({ image: "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime" });
 * const result = await runner.runExperiment(
 *   { runId: "demo", config: { lr: 0.001 }, command: ["python", "train.py", "--config", "{config}"] },
 *   { gpuType: "A10G", timeoutSeconds: 1800 },
 * );
 * await runner.close();
 */
export class ModalRunner extends BaseCloudRunner {
  readonly name = "modal";
  readonly #options: ResolvedOptions;
  readonly #modal: ModalClient;
  readonly #runs = new Map<string, RunState>();
  /** Sandboxes created and not yet terminated by this runner. */
  readonly #live = new Map<string, Sandbox>();
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #tarballs = new Map<string, Promise<PackedProject>>();
  #setup: Promise<Setup> | undefined;
  #tempDir: Promise<string> | undefined;
  #closed = false;

  /** Throws before anything is created when the options are invalid or no Modal token can be found. */
  constructor(options: ModalRunnerOptions = {}) {
    super();
    this.#options = parseOptions(options);
    const credentials = resolveModalCredentials(this.#options);
    this.#modal = new ModalClient({
      tokenId: credentials.tokenId,
      tokenSecret: credentials.tokenSecret,
      ...(this.#options.environment === undefined
        ? {}
        : { environment: this.#options.environment }),
      ...(this.#options.logLevel === undefined ? {} : { logLevel: this.#options.logLevel }),
    });
  }

  /** Ids of the sandboxes this runner created and has not terminated (yet). */
  sandboxIds(): string[] {
    return [...this.#live.keys()];
  }

  getStatus(runId: string): Promise<RunStatus> {
    return Promise.resolve(this.#runs.get(runId)?.status ?? "unknown");
  }

  cancel(runId: string): Promise<boolean> {
    const run = this.#runs.get(runId);
    if (!run || run.done) return Promise.resolve(false);
    run.abort.abort();
    return Promise.resolve(true);
  }

  /** Cancels what still runs, terminates every sandbox left and removes temp files. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const run of this.#runs.values()) if (!run.done) run.abort.abort();
    await Promise.allSettled([...this.#inFlight]);
    await Promise.allSettled([...this.#live.values()].map((sandbox) => this.#terminate(sandbox)));
    if (this.#tempDir) await rm(await this.#tempDir, { recursive: true, force: true });
    this.#modal.close();
  }

  runExperiment(experiment: ExperimentSpec, options: RunOptions = {}): Promise<ExperimentResult> {
    const spec = resolveSpec(experiment);
    const { gpuType = "standard", timeoutSeconds = 3600 } = options;
    let gpu: string | undefined;
    try {
      gpu = this.#check(spec, gpuType, timeoutSeconds);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const running = this.#run(spec, gpu, gpuType, timeoutSeconds, options);
    this.#track(running);
    return running;
  }

  /** Refuses, before anything is created, a bad GPU type, timeout, run id or stage; answers the Modal GPU string. */
  #check(spec: ResolvedSpec, gpuType: string, timeoutSeconds: number): string | undefined {
    const gpu = modalGpu(gpuType);
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
      throw new RangeError(
        `[modal-runner] timeoutSeconds must be a positive number, got ${timeoutSeconds} (run ${spec.runId})`,
      );
    }
    for (const [what, value] of [
      ["run id", spec.runId],
      ["stage", spec.stage],
    ] as const) {
      if (!SAFE_NAME.test(value)) {
        throw new RangeError(
          `[modal-runner] ${what} ${JSON.stringify(value)} cannot name a folder; use letters, digits, '_', '-', '.', '='`,
        );
      }
    }
    if (this.#closed)
      throw new Error(`[modal-runner] the runner is closed; cannot start run ${spec.runId}`);
    if (this.#runs.get(spec.runId)?.done === false) {
      throw new Error(`[modal-runner] run ${spec.runId} is already running on this runner`);
    }
    return gpu;
  }

  async #run(
    spec: ResolvedSpec,
    gpu: string | undefined,
    gpuType: string,
    timeoutSeconds: number,
    options: RunOptions,
  ): Promise<ExperimentResult> {
    const run: RunState = { status: "pending", abort: new AbortController(), done: false };
    this.#runs.set(spec.runId, run);
    const onAbort = (): void => run.abort.abort();
    if (options.signal?.aborted) run.abort.abort();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
    const calledAt = new Date();
    const logsPath = path.resolve(this.#options.cacheDir, "modal", spec.stage, spec.runId);
    let started = false;
    const onReady = (): void => {
      run.status = "running";
      if (started) return;
      started = true;
      options.onStart?.(spec.runId);
    };
    try {
      const failures: string[] = [];
      let aliveMs = 0;
      let firstReadyAt: Date | undefined;
      let outcome: AttemptOutcome;
      for (let retry = 0; ; retry++) {
        if (run.abort.signal.aborted) {
          outcome = { kind: "cancelled" };
          break;
        }
        const attempt = await this.#attempt(spec, run, {
          gpu,
          timeoutSeconds,
          options,
          logsPath,
          onReady,
          failures,
        });
        aliveMs += attempt.aliveMs;
        firstReadyAt ??= attempt.readyAt;
        outcome = attempt.outcome;
        if (outcome.kind !== "infrastructure") break;
        failures.push(`attempt ${retry + 1}: ${outcome.message}`);
        if (!outcome.retryable || retry >= this.#options.maxInfraRetries) break;
        const delayMs = this.#options.infraRetryDelayMs * 2 ** retry;
        if (!(await sleepUnlessAborted(delayMs, run.abort.signal))) {
          outcome = { kind: "cancelled" };
          break;
        }
      }
      const completedAt = new Date();
      const base = {
        runId: spec.runId,
        config: spec.config,
        startedAt: (firstReadyAt ?? calledAt).toISOString(),
        completedAt: completedAt.toISOString(),
        durationSeconds: aliveMs / 1000,
        attempt: spec.attempt,
        backend: this.name,
        gpuType,
        logsPath: firstReadyAt ? logsPath : null,
      };
      let result: ExperimentResult;
      if (outcome.kind === "ended") {
        const judged = judgeOutcome(outcome.ending);
        result = {
          ...base,
          metrics: judged.metrics,
          checkpointPath: outcome.checkpointPath,
          status: judged.status,
          errorMessage: judged.errorMessage,
          ...(judged.status === "failed" ? { failureKind: "experiment" as const } : {}),
        };
      } else if (outcome.kind === "cancelled") {
        result = {
          ...base,
          metrics: {},
          checkpointPath: null,
          status: "cancelled",
          errorMessage: "cancelled by the user",
        };
      } else {
        const tries = failures.length === 1 ? "1 attempt" : `${failures.length} attempts`;
        result = {
          ...base,
          metrics: {},
          checkpointPath: null,
          status: "failed",
          failureKind: "infrastructure",
          errorMessage:
            `[modal-runner] infrastructure failure, not the experiment's (run ${spec.runId}, ${tries}): ${outcome.message}` +
            (failures.length > 1 ? `\n${failures.join("\n")}` : ""),
        };
      }
      run.status = result.status;
      return result;
    } finally {
      run.done = true;
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  async #attempt(
    spec: ResolvedSpec,
    run: RunState,
    context: {
      gpu: string | undefined;
      timeoutSeconds: number;
      options: RunOptions;
      logsPath: string;
      onReady: () => void;
      failures: readonly string[];
    },
  ): Promise<Attempt> {
    const signal = run.abort.signal;
    let sandbox: Sandbox | undefined;
    let readyAt: Date | undefined;
    let outcome: AttemptOutcome;
    try {
      const setup = await unlessAborted(this.#prepare(), signal);
      const packed = await unlessAborted(this.#pack(spec.projectRoot), signal);
      const params: SandboxCreateParams = {
        timeoutMs: (Math.ceil(context.timeoutSeconds) + this.#options.timeoutMarginSeconds) * 1000,
        workdir: this.#options.remoteDir,
        secrets: setup.secrets,
        volumes: setup.volumes,
        tags: { tmgg_run_id: spec.runId, tmgg_stage: spec.stage },
        ...(context.gpu === undefined ? {} : { gpu: context.gpu }),
        ...(Object.keys(this.#options.env).length > 0 ? { env: this.#options.env } : {}),
        ...(this.#options.cpu === undefined ? {} : { cpu: this.#options.cpu }),
        ...(this.#options.memoryMiB === undefined ? {} : { memoryMiB: this.#options.memoryMiB }),
      };
      sandbox = await unlessAborted(
        this.#modal.sandboxes.create(setup.app, setup.image, params),
        signal,
        (late) => {
          // Created after the run was cancelled: record it and end it at once.
          this.#adopt(late, spec.runId);
          this.#track(this.#terminate(late));
        },
      );
      readyAt = new Date();
      this.#adopt(sandbox, spec.runId);
      context.onReady();
      outcome = await this.#runInSandbox(sandbox, spec, packed, signal, context);
    } catch (error) {
      if (error instanceof Cancelled || signal.aborted) outcome = { kind: "cancelled" };
      else outcome = { kind: "infrastructure", ...describeInfrastructureFailure(error) };
    } finally {
      if (sandbox) await this.#terminate(sandbox);
    }
    return { outcome, readyAt, aliveMs: readyAt ? Date.now() - readyAt.getTime() : 0 };
  }

  async #runInSandbox(
    sandbox: Sandbox,
    spec: ResolvedSpec,
    packed: PackedProject,
    signal: AbortSignal,
    context: {
      timeoutSeconds: number;
      options: RunOptions;
      logsPath: string;
      failures: readonly string[];
    },
  ): Promise<AttemptOutcome> {
    const remote = this.#layout(spec);
    const { logsPath } = context;
    const step = <T>(promise: Promise<T>): Promise<T> => unlessAborted(promise, signal);

    await rm(logsPath, { recursive: true, force: true });
    await mkdir(logsPath, { recursive: true });
    await writeFile(path.join(logsPath, CONFIG_FILE), `${JSON.stringify(spec.config, null, 2)}\n`);

    // Ship the project and the config in.
    await step(sandbox.filesystem.copyFromLocal(packed.file, remote.tarball));
    await this.#setupExec(
      sandbox,
      ["mkdir", "-p", remote.projectDir, remote.runDir],
      signal,
      "creating the run folders",
    );
    await this.#setupExec(
      sandbox,
      ["tar", "xzf", remote.tarball, "-C", remote.projectDir],
      signal,
      "unpacking the project",
    );
    await step(
      sandbox.filesystem.writeText(`${JSON.stringify(spec.config, null, 2)}\n`, remote.configPath),
    );

    const stdoutFile = createWriteStream(path.join(logsPath, STDOUT_FILE));
    const stderrFile = createWriteStream(path.join(logsPath, STDERR_FILE));
    for (const failure of context.failures) {
      stderrFile.write(`[modal-runner] ${failure} (infrastructure; retried on a new sandbox)\n`);
    }
    const stderrTail = new TailBuffer();
    const progress = context.options.onProgress
      ? new ProgressLines((point) => context.options.onProgress?.(spec.runId, point))
      : undefined;
    let polling: NodeJS.Timeout | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const experiment = await step(
        sandbox.exec(expandCommand(spec, remote), {
          workdir: remote.projectDir,
          env: contractEnv(spec, remote),
        }),
      );
      const pumps = Promise.all([
        pump(experiment.stdout, stdoutFile),
        pump(experiment.stderr, stderrFile, stderrTail),
      ]);
      pumps.catch(() => {});
      if (progress && this.#options.progressIntervalMs > 0) {
        let reading = false;
        polling = setInterval(() => {
          if (reading) return;
          reading = true;
          this.#readOptional(sandbox, `${remote.runDir}/${PROGRESS_FILE}`)
            .then((text) => {
              if (text !== undefined) progress.feed(text, false);
            })
            .catch(() => {})
            .finally(() => {
              reading = false;
            });
        }, this.#options.progressIntervalMs);
      }
      type First =
        | { kind: "exit"; code: number }
        | { kind: "error"; error: unknown }
        | { kind: "sandbox"; code: number | null }
        | { kind: "timeout" }
        | { kind: "cancel" };
      const first = await Promise.race<First>([
        experiment.wait().then(
          (code): First => ({ kind: "exit", code }),
          (error: unknown): First => ({ kind: "error", error }),
        ),
        // Watches the sandbox itself: if Modal loses it, the exec's wait may never return.
        sandbox.wait().then(
          (code): First => ({ kind: "sandbox", code }),
          () => new Promise<First>(() => {}),
        ),
        new Promise<First>((resolve) => {
          timer = setTimeout(() => resolve({ kind: "timeout" }), context.timeoutSeconds * 1000);
        }),
        new Promise<First>((resolve) => {
          if (signal.aborted) resolve({ kind: "cancel" });
          signal.addEventListener("abort", () => resolve({ kind: "cancel" }), { once: true });
        }),
      ]);
      clearTimeout(timer);
      clearInterval(polling);
      const timedOut = (): AttemptOutcome => ({
        kind: "ended",
        checkpointPath: null,
        ending: {
          exitCode: null,
          timedOut: true,
          cancelled: false,
          timeoutSeconds: context.timeoutSeconds,
          stderrTail: stderrTail.toString(),
          metrics: { metrics: {} },
          objectiveMetric: spec.objectiveMetric,
        },
      });
      if (first.kind === "timeout" || first.kind === "cancel") {
        await this.#terminate(sandbox);
        await settleWithin(pumps, 3000);
        return first.kind === "cancel" ? { kind: "cancelled" } : timedOut();
      }
      if (first.kind === "sandbox") {
        await settleWithin(pumps, 3000);
        if (first.code === SANDBOX_TIMEOUT_EXIT) return timedOut();
        throw new InfrastructureError(
          `sandbox ${sandbox.sandboxId} ended while the experiment ran (sandbox exit ${first.code}): Modal lost or stopped the machine`,
          { retryable: true },
        );
      }
      if (first.kind === "error" || first.code >= 128) {
        // Killed, or the exec itself failed: did the sandbox end under the experiment?
        const sandboxExit = await step(sandbox.poll()).catch((error: unknown) => {
          if (error instanceof Cancelled) throw error;
          return undefined;
        });
        if (sandboxExit === SANDBOX_TIMEOUT_EXIT) {
          await settleWithin(pumps, 3000);
          return timedOut(); // Modal's own timeout (timeout_seconds plus the margin) ended it
        }
        if (first.kind === "error") throw first.error;
        if (sandboxExit !== null) {
          throw new InfrastructureError(
            `sandbox ${sandbox.sandboxId} ended while the experiment ran (exit ${first.code}): Modal lost or stopped the machine`,
            { retryable: true },
          );
        }
      }
      await settleWithin(pumps, 10_000);

      // Read back what the experiment left.
      const metricsText = await step(
        this.#readOptional(sandbox, `${remote.runDir}/${METRICS_FILE}`),
      );
      if (metricsText !== undefined)
        await writeFile(path.join(logsPath, METRICS_FILE), metricsText);
      const progressText = await step(
        this.#readOptional(sandbox, `${remote.runDir}/${PROGRESS_FILE}`),
      );
      if (progressText !== undefined) {
        await writeFile(path.join(logsPath, PROGRESS_FILE), progressText);
        progress?.feed(progressText, true);
      }
      let checkpointPath: string | null = null;
      if (this.#options.downloadCheckpoints) {
        try {
          checkpointPath = await step(this.#downloadCheckpoints(sandbox, spec, remote, logsPath));
        } catch (error) {
          if (error instanceof Cancelled) throw error;
          await writeChunk(
            stderrFile,
            `[modal-runner] could not copy the checkpoints back: ${(error as Error).message}\n`,
          );
        }
      }
      const ending: RunEnding = {
        exitCode: first.code,
        timedOut: false,
        cancelled: false,
        timeoutSeconds: context.timeoutSeconds,
        stderrTail: stderrTail.toString(),
        metrics: parseMetrics(metricsText),
        objectiveMetric: spec.objectiveMetric,
      };
      return { kind: "ended", ending, checkpointPath };
    } finally {
      clearTimeout(timer);
      clearInterval(polling);
      await Promise.all([closeFile(stdoutFile), closeFile(stderrFile)]);
    }
  }

  #layout(spec: ResolvedSpec): RemoteLayout {
    const root = this.#options.remoteDir;
    const runDir = `${root}/runs/${spec.runId}`;
    return {
      projectDir: `${root}/project`,
      tarball: `${root}/project.tar.gz`,
      runDir,
      configPath: `${runDir}/${CONFIG_FILE}`,
    };
  }

  /** Runs a setup command in the sandbox; a non-zero exit is an infrastructure failure (the image lacks a tool, a full disk…). */
  async #setupExec(
    sandbox: Sandbox,
    argv: string[],
    signal: AbortSignal,
    what: string,
  ): Promise<void> {
    const command = await unlessAborted(sandbox.exec(argv), signal);
    const [code, , stderr] = await unlessAborted(
      Promise.all([command.wait(), command.stdout.readText(), command.stderr.readText()]),
      signal,
    );
    if (code !== 0) {
      throw new InfrastructureError(
        `${what} failed in sandbox ${sandbox.sandboxId}: \`${argv.join(" ")}\` exited with ${code}${stderr.trim() ? `: ${stderr.trim()}` : ""}; ` +
          `the image needs mkdir and tar (option image / buildCommands)`,
        { retryable: false },
      );
    }
  }

  async #readOptional(sandbox: Sandbox, remotePath: string): Promise<string | undefined> {
    try {
      return await sandbox.filesystem.readText(remotePath);
    } catch (error) {
      if (error instanceof SandboxFilesystemNotFoundError) return undefined;
      throw error;
    }
  }

  async #downloadCheckpoints(
    sandbox: Sandbox,
    spec: ResolvedSpec,
    remote: RemoteLayout,
    logsPath: string,
  ): Promise<string | null> {
    const entries = await sandbox.filesystem.listFiles(remote.runDir);
    if (!entries.some((entry) => entry.name === CHECKPOINTS_DIR && entry.type === "directory"))
      return null;
    const remoteTar = `${this.#options.remoteDir}/checkpoints-${spec.runId}.tar.gz`;
    const packing = await sandbox.exec([
      "tar",
      "czf",
      remoteTar,
      "-C",
      remote.runDir,
      CHECKPOINTS_DIR,
    ]);
    const [code, , stderr] = await Promise.all([
      packing.wait(),
      packing.stdout.readText(),
      packing.stderr.readText(),
    ]);
    if (code !== 0)
      throw new Error(
        `packing ${remote.runDir}/${CHECKPOINTS_DIR} exited with ${code}: ${stderr.trim()}`,
      );
    const localTar = path.join(logsPath, ".checkpoints.tar.gz");
    await sandbox.filesystem.copyToLocal(remoteTar, localTar);
    try {
      await extract({ file: localTar, cwd: logsPath });
    } finally {
      await rm(localTar, { force: true });
    }
    return path.join(logsPath, CHECKPOINTS_DIR);
  }

  /** The app, the built image, the secrets and the volumes: looked up once per runner. */
  #prepare(): Promise<Setup> {
    this.#setup ??= (async () => {
      const { appName, environment } = this.#options;
      const where = environment === undefined ? {} : { environment };
      const app = await this.#modal.apps.fromName(appName, { ...where, createIfMissing: true });
      let image = this.#modal.images.fromRegistry(this.#options.image);
      image = image.dockerfileCommands(this.#options.buildCommands);
      await image.build(app);
      const secrets = await Promise.all(
        this.#options.secrets.map((name) => this.#modal.secrets.fromName(name, where)),
      );
      const volumes: Record<string, Volume> = {};
      for (const [name, mountPath] of Object.entries(this.#options.volumes)) {
        volumes[mountPath] = await this.#modal.volumes.fromName(name, {
          ...where,
          createIfMissing: true,
        });
      }
      return { app, image, secrets, volumes };
    })().catch((error: unknown) => {
      this.#setup = undefined;
      // A missing secret or a refused option fails the same way every time: no retry.
      const failure =
        error instanceof NotFoundError || error instanceof InvalidError
          ? { message: error.message, retryable: false }
          : describeInfrastructureFailure(error);
      throw new InfrastructureError(
        `preparing Modal app "${this.#options.appName}" with image "${this.#options.image}" failed: ${failure.message}`,
        { retryable: failure.retryable, cause: error },
      );
    });
    return this.#setup;
  }

  /** The project tarball, packed once per project root. */
  #pack(projectRoot: string): Promise<PackedProject> {
    const root = path.resolve(projectRoot);
    let packed = this.#tarballs.get(root);
    if (!packed) {
      this.#tempDir ??= mkdtemp(path.join(tmpdir(), "tmgg-modal-"));
      packed = this.#tempDir.then((dir) =>
        packProject(root, path.join(dir, `project-${this.#tarballs.size}.tar.gz`), {
          ignore: this.#options.uploadIgnore,
          maxBytes: this.#options.maxUploadBytes,
        }),
      );
      packed.catch(() => this.#tarballs.delete(root));
      this.#tarballs.set(root, packed);
    }
    return packed;
  }

  /** Keeps `work` in the set {@link close} waits for. */
  #track(work: Promise<unknown>): void {
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work)).catch(() => {});
  }

  #adopt(sandbox: Sandbox, runId: string): void {
    this.#live.set(sandbox.sandboxId, sandbox);
    this.#options.onSandbox?.({ sandboxId: sandbox.sandboxId, runId });
  }

  /** Terminates a sandbox once; one that cannot be terminated stays in {@link sandboxIds}. */
  async #terminate(sandbox: Sandbox): Promise<void> {
    if (!this.#live.has(sandbox.sandboxId)) return;
    this.#live.delete(sandbox.sandboxId);
    try {
      await unlessAborted(sandbox.terminate(), AbortSignal.timeout(30_000));
      sandbox.detach();
    } catch {
      this.#live.set(sandbox.sandboxId, sandbox);
    }
  }
}

/**
 * Creates a {@link ModalRunner}; the factory `CloudRunnerFactory.create("modal", options)`
 * calls. Throws before anything is created when the options are invalid or no Modal
 * token is found (`modal token new`, or MODAL_TOKEN_ID and MODAL_TOKEN_SECRET).
 *
 * @example
 * const runner = createModalRunner({ buildCommands: ["RUN pip install torch numpy"], secrets: ["wandb"] });
 */
export function createModalRunner(options: ModalRunnerOptions = {}): ModalRunner {
  return new ModalRunner(options);
}
