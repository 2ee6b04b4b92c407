/**
 * A fake Modal control plane and task command router on 127.0.0.1, speaking the real
 * SDK's gRPC protocol (its own service definitions), so tests drive the real `modal`
 * client. Every method is registered; the ones a sandbox runner needs are implemented,
 * the rest answer UNIMPLEMENTED. A sandbox is a temp folder; `exec` runs the command for
 * real as a local child process, with the sandbox's absolute paths (its workdir and
 * volume mounts) mapped onto local folders.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  ServerError,
  Status,
  createServer,
  type CallContext,
  type Server,
  type ServerMiddlewareCall,
} from "nice-grpc";
import { MODAL_GPU_NAMES } from "@tmgg/core";
import { FS_TOOLS_PATH, FakeExec, type ExecExit, type PathMapper } from "./fake-exec.ts";
import { sdkDefinitions, type SdkServiceDefinition } from "./sdk-definitions.ts";

/** GPU types the fake's SandboxCreate accepts, as Modal lists them. */
export const FAKE_MODAL_GPU_TYPES = MODAL_GPU_NAMES;

/** Modal's `GenericResult` statuses, as the SDK reads them. */
export const GENERIC_STATUS = { success: 1, failure: 2, terminated: 3, timeout: 4 } as const;

export interface FakeModalOptions {
  /** Credentials the fake accepts; default `ak-fake` / `as-fake`. */
  tokenId?: string;
  tokenSecret?: string;
  /** Named secrets (`modal.secrets.fromName`), name → env. Others are NOT_FOUND. */
  secrets?: Record<string, Record<string, string>>;
  /** Named volumes that exist up front (others exist once created with `createIfMissing`). */
  volumes?: readonly string[];
  /** How long a new sandbox waits for its "machine" before it gets a task; default 0. */
  schedulingDelayMs?: number;
}

/** One RPC as the fake received it. */
export interface RecordedCall {
  service: "ModalClient" | "TaskCommandRouter";
  /** The method name (`SandboxCreate`, `TaskExecStart`, …). */
  method: string;
  /** The decoded request (undefined for client-streaming calls). */
  request: unknown;
  atMs: number;
  /** Set when an injected failure answered the call. */
  injected?: string;
}

/** What a test can see of one sandbox. */
export interface FakeSandbox {
  sandboxId: string;
  taskId: string;
  appId: string;
  imageId: string;
  /** `TYPE:N` as requested, or null for a CPU sandbox. */
  gpu: string | null;
  timeoutSecs: number;
  workdir: string;
  /** The local folder the workdir maps to. */
  dir: string;
  /** Env the sandbox was created with (its secrets, `env` included). */
  env: Record<string, string>;
  tags: Record<string, string>;
  /** Mount path → volume name. */
  volumes: Record<string, string>;
  /** V2 (CPU) sandboxes come from SandboxCreateV2. */
  isV2: boolean;
  /** argv of every exec, in order (file-helper execs included). */
  execs: string[][];
  /** How it ended (`GENERIC_STATUS`), or undefined while it runs. */
  result: { status: number; exitcode: number; exception: string } | undefined;
  /** SandboxTerminate calls it received. */
  terminateCalls: number;
}

interface SandboxState extends FakeSandbox {
  scheduled: boolean;
  createdAtSeconds: number;
  paths: PathMapper;
  execMap: Map<string, FakeExec>;
  timer: NodeJS.Timeout | undefined;
  waiters: Set<() => void>;
}

interface InjectedFailure {
  times: number;
  code: Status;
  details: string;
}

interface SandboxLoss {
  times: number;
  when: (argv: readonly string[]) => boolean;
  afterMs: number;
}

interface SecretRecord {
  name: string | undefined;
  env: Record<string, string>;
}

type Handler = (request: unknown, context: CallContext) => unknown;

interface MethodCall {
  path: string;
  request: unknown;
}

const ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function randomId(prefix: string, length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const byte of bytes) out += ALPHANUMERIC[byte % ALPHANUMERIC.length];
  return `${prefix}${out}`;
}

function fakeJwt(subject: string): string {
  const encode = (value: object): string =>
    Buffer.from(JSON.stringify(value)).toString("base64url");
  const exp = Math.floor(Date.now() / 1000) + 24 * 3600;
  return `${encode({ alg: "none", typ: "JWT" })}.${encode({ sub: subject, exp })}.fake`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function pathMapper(mappings: Array<[remote: string, local: string]>): PathMapper {
  const sorted = [...mappings].sort((a, b) => b[0].length - a[0].length);
  return {
    toLocal(remotePath) {
      const normalized = path.posix.normalize(remotePath);
      for (const [remote, local] of sorted) {
        if (normalized === remote) return local;
        if (normalized.startsWith(`${remote}/`))
          return path.join(local, normalized.slice(remote.length + 1));
      }
      return undefined;
    },
    rewrite(text) {
      let out = text;
      for (const [remote, local] of sorted) {
        out = out.replace(
          new RegExp(`(?<![\\w.-])${escapeRegExp(remote)}(?=/|$|[:\\s])`, "g"),
          local,
        );
      }
      return out;
    },
  };
}

function stringMap(value: unknown): Record<string, string> {
  return value && typeof value === "object" ? { ...(value as Record<string, string>) } : {};
}

// The request shapes the fake reads (the SDK's ts-proto messages, fields it uses).
interface GpuConfig {
  gpuType?: string;
  count?: number;
}
interface SandboxDefinition {
  entrypointArgs?: string[];
  imageId?: string;
  timeoutSecs?: number;
  workdir?: string;
  secretIds?: string[];
  resources?: { gpuConfig?: GpuConfig };
  volumeMounts?: Array<{ volumeId: string; mountPath: string }>;
}
interface SandboxCreateRequest {
  appId: string;
  definition?: SandboxDefinition;
  tags?: Array<{ tagName: string; tagValue: string }>;
  secretSources?: SecretSource[];
}
interface SecretSource {
  secretId?: string;
  env?: { contents?: Record<string, string> };
}
interface ExecStartRequest {
  taskId: string;
  execId: string;
  commandArgs: string[];
  stdoutConfig: number;
  stderrConfig: number;
  timeoutSecs?: number;
  workdir?: string;
  secretIds?: string[];
  env?: Record<string, string>;
  secretSources?: SecretSource[];
}
interface ExecRef {
  taskId: string;
  execId: string;
}
interface StdinWriteStreamRequest {
  start?: { taskId: string; execId: string; offset: number };
  data?: Uint8Array;
  end?: object;
}

/**
 * The fake. Start it with {@link startFakeModal}; point the SDK at it with
 * {@link FakeModal.env}; dispose of it with `await using` or {@link FakeModal.close}.
 *
 * @example
 * await using modal = await startFakeModal();
 * Object.assign(process.env, modal.env());
 * // … run code that uses `new ModalClient()` …
 * modal.assertExhausted();
 */
export class FakeModal implements AsyncDisposable {
  /** Every RPC received, in order. */
  readonly calls: RecordedCall[] = [];
  readonly #options: Required<Omit<FakeModalOptions, "secrets" | "volumes">>;
  readonly #server: Server;
  #port = 0;
  readonly #apps = new Map<string, string>();
  readonly #images = new Map<string, string[]>();
  readonly #secrets = new Map<string, SecretRecord>();
  readonly #namedSecrets: Record<string, Record<string, string>>;
  readonly #volumes = new Map<string, { id: string; dir: string | undefined }>();
  readonly #sandboxes = new Map<string, SandboxState>();
  readonly #byTask = new Map<string, SandboxState>();
  readonly #failures = new Map<string, InjectedFailure[]>();
  readonly #losses: SandboxLoss[] = [];
  readonly #routerJwt = fakeJwt("task-command-router");
  #closed = false;

  private constructor(options: FakeModalOptions) {
    this.#options = {
      tokenId: options.tokenId ?? "ak-fake",
      tokenSecret: options.tokenSecret ?? "as-fake",
      schedulingDelayMs: options.schedulingDelayMs ?? 0,
    };
    this.#namedSecrets = options.secrets ?? {};
    for (const name of options.volumes ?? [])
      this.#volumes.set(name, { id: randomId("vo-", 22), dir: undefined });
    const { controlPlane, commandRouter } = sdkDefinitions();
    const intercept = (call: MethodCall, context: CallContext): void =>
      this.#intercept(call, context);
    const server = createServer({ "grpc.max_receive_message_length": 100 * 1024 * 1024 }).use(
      async function* <Request, Response>(
        call: ServerMiddlewareCall<Request, Response>,
        context: CallContext,
      ) {
        intercept(
          { path: call.method.path, request: call.requestStream ? undefined : call.request },
          context,
        );
        return yield* call.next(call.request, context);
      },
    );
    server.add(
      controlPlane as never,
      this.#implement(controlPlane, this.#controlPlaneHandlers()) as never,
    );
    server.add(
      commandRouter as never,
      this.#implement(commandRouter, this.#routerHandlers()) as never,
    );
    this.#server = server;
  }

  /** @internal */
  static async start(options: FakeModalOptions): Promise<FakeModal> {
    const fake = new FakeModal(options);
    fake.#port = await fake.#server.listen("127.0.0.1:0");
    return fake;
  }

  /** The control plane's URL (`http://127.0.0.1:PORT`), for `MODAL_SERVER_URL`. */
  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** The env that points the SDK at this fake: server URL and the accepted credentials. */
  env(): Record<string, string> {
    return {
      MODAL_SERVER_URL: this.url,
      MODAL_TOKEN_ID: this.#options.tokenId,
      MODAL_TOKEN_SECRET: this.#options.tokenSecret,
    };
  }

  /** The calls to one method, in order. */
  callsTo(method: string): RecordedCall[] {
    return this.calls.filter((call) => call.method === method);
  }

  /** Every sandbox created so far, in order. */
  sandboxes(): FakeSandbox[] {
    return [...this.#sandboxes.values()].map((state) => this.#view(state));
  }

  /** One sandbox by id. */
  sandbox(sandboxId: string): FakeSandbox | undefined {
    const state = this.#sandboxes.get(sandboxId);
    return state && this.#view(state);
  }

  /** SandboxTerminate calls one sandbox received. */
  terminateCount(sandboxId: string): number {
    return this.#sandboxes.get(sandboxId)?.terminateCalls ?? 0;
  }

  /**
   * Makes the next `times` calls to `method` (`SandboxCreate`, `TaskExecStart`, …) fail
   * with `code` (default RESOURCE_EXHAUSTED, as when no GPU is free).
   */
  failNext(
    method: string,
    options: { times?: number; code?: Status; details?: string } = {},
  ): void {
    const queue = this.#failures.get(method) ?? [];
    queue.push({
      times: options.times ?? 1,
      code: options.code ?? Status.RESOURCE_EXHAUSTED,
      details: options.details ?? `injected failure of ${method} (fake Modal)`,
    });
    this.#failures.set(method, queue);
  }

  /**
   * Loses the next `times` sandboxes the way a preempted worker does: once an exec whose
   * argv satisfies `when` has run for `afterMs`, the sandbox ends (status failure) and
   * every process in it is killed.
   */
  loseSandboxes(
    times: number,
    options: { when?: (argv: readonly string[]) => boolean; afterMs?: number } = {},
  ): void {
    this.#losses.push({
      times,
      when: options.when ?? ((argv) => argv[0] !== FS_TOOLS_PATH),
      afterMs: options.afterMs ?? 50,
    });
  }

  /** Throws when an injected failure or sandbox loss was never used. */
  assertExhausted(): void {
    const left: string[] = [];
    for (const [method, queue] of this.#failures) {
      for (const failure of queue)
        if (failure.times > 0) left.push(`${failure.times} × ${method} ${Status[failure.code]}`);
    }
    for (const loss of this.#losses) if (loss.times > 0) left.push(`${loss.times} × sandbox loss`);
    if (left.length > 0)
      throw new Error(`[modal-fake] injected but never used: ${left.join(", ")}`);
  }

  /** Throws when a sandbox never received a SandboxTerminate. */
  assertAllTerminated(): void {
    const left = [...this.#sandboxes.values()].filter((sandbox) => sandbox.terminateCalls === 0);
    if (left.length > 0) {
      throw new Error(
        `[modal-fake] sandboxes never terminated: ${left.map((s) => s.sandboxId).join(", ")}`,
      );
    }
  }

  /** Ends the sandbox as the platform would (status failure), killing its processes. */
  loseSandbox(sandboxId: string, exception = "worker lost (fake Modal)"): void {
    const state = this.#sandboxes.get(sandboxId);
    if (state) this.#finish(state, { status: GENERIC_STATUS.failure, exitcode: 0, exception });
  }

  /** Kills every process, stops the server and removes every temp folder. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const state of this.#sandboxes.values()) {
      this.#finish(state, {
        status: GENERIC_STATUS.terminated,
        exitcode: 137,
        exception: "fake Modal closed",
      });
    }
    this.#server.forceShutdown();
    const dirs = [...this.#sandboxes.values()].map((state) => state.dir);
    for (const volume of this.#volumes.values()) if (volume.dir) dirs.push(volume.dir);
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- plumbing ---------------------------------------------------------------------

  #implement(
    definition: SdkServiceDefinition,
    handlers: Record<string, Handler>,
  ): Record<string, Handler> {
    const implementation: Record<string, Handler> = {};
    for (const [key, method] of Object.entries(definition.methods)) {
      const handler = handlers[method.name];
      if (handler) {
        implementation[key] = handler;
      } else {
        const unimplemented = (): ServerError =>
          new ServerError(
            Status.UNIMPLEMENTED,
            `[modal-fake] ${definition.name}/${method.name} is not implemented`,
          );
        implementation[key] = method.responseStream
          ? () => ({
              [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(unimplemented()) }),
            })
          : () => {
              throw unimplemented();
            };
      }
    }
    return implementation;
  }

  /** Records, authenticates and injects failures for every call. */
  #intercept(incoming: MethodCall, context: CallContext): void {
    const [, serviceName = "", method = ""] = incoming.path.split("/");
    const service = serviceName.endsWith("TaskCommandRouter") ? "TaskCommandRouter" : "ModalClient";
    const call: RecordedCall = { service, method, request: incoming.request, atMs: Date.now() };
    this.calls.push(call);
    if (service === "ModalClient") {
      const tokenId = context.metadata.get("x-modal-token-id");
      const tokenSecret = context.metadata.get("x-modal-token-secret");
      if (tokenId !== this.#options.tokenId || tokenSecret !== this.#options.tokenSecret) {
        call.injected = "UNAUTHENTICATED";
        throw new ServerError(Status.UNAUTHENTICATED, "Invalid token id or secret (fake Modal)");
      }
    } else if (context.metadata.get("authorization") !== `Bearer ${this.#routerJwt}`) {
      call.injected = "UNAUTHENTICATED";
      throw new ServerError(Status.UNAUTHENTICATED, "Invalid command router token (fake Modal)");
    }
    const failure = this.#failures.get(method)?.find((candidate) => candidate.times > 0);
    if (failure) {
      failure.times -= 1;
      call.injected = Status[failure.code];
      throw new ServerError(failure.code, failure.details);
    }
  }

  #view(state: SandboxState): FakeSandbox {
    return {
      sandboxId: state.sandboxId,
      taskId: state.taskId,
      appId: state.appId,
      imageId: state.imageId,
      gpu: state.gpu,
      timeoutSecs: state.timeoutSecs,
      workdir: state.workdir,
      dir: state.dir,
      env: { ...state.env },
      tags: { ...state.tags },
      volumes: { ...state.volumes },
      isV2: state.isV2,
      execs: state.execs.map((argv) => [...argv]),
      result: state.result && { ...state.result },
      terminateCalls: state.terminateCalls,
    };
  }

  #finish(
    state: SandboxState,
    result: { status: number; exitcode: number; exception: string },
  ): void {
    if (state.result) return;
    state.result = result;
    clearTimeout(state.timer);
    for (const exec of state.execMap.values()) {
      exec.kill();
      exec.killGroup();
    }
    for (const waiter of [...state.waiters]) waiter();
  }

  async #waitFinished(
    state: SandboxState,
    timeoutSeconds: number,
    signal: AbortSignal,
  ): Promise<void> {
    if (state.result || timeoutSeconds <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutSeconds * 1000);
      function done(): void {
        clearTimeout(timer);
        state.waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      }
      state.waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  #sandbox(sandboxId: string): SandboxState {
    const state = this.#sandboxes.get(sandboxId);
    if (!state)
      throw new ServerError(Status.NOT_FOUND, `Sandbox ${sandboxId} not found (fake Modal)`);
    return state;
  }

  #task(taskId: string): SandboxState {
    const state = this.#byTask.get(taskId);
    if (!state) throw new ServerError(Status.NOT_FOUND, `Task ${taskId} not found (fake Modal)`);
    return state;
  }

  #exec(ref: ExecRef): FakeExec {
    const exec = this.#task(ref.taskId).execMap.get(ref.execId);
    if (!exec) throw new ServerError(Status.NOT_FOUND, `Exec ${ref.execId} not found (fake Modal)`);
    return exec;
  }

  #secretEnv(
    secretIds: readonly string[],
    sources: readonly SecretSource[] = [],
  ): Record<string, string> {
    const env: Record<string, string> = {};
    for (const id of secretIds) {
      const secret = this.#secrets.get(id);
      if (!secret) throw new ServerError(Status.NOT_FOUND, `Secret ${id} not found (fake Modal)`);
      Object.assign(env, secret.env);
    }
    for (const source of sources) {
      if (source.secretId) Object.assign(env, this.#secretEnv([source.secretId]));
      if (source.env?.contents) Object.assign(env, source.env.contents);
    }
    return env;
  }

  async #createSandbox(request: SandboxCreateRequest, isV2: boolean): Promise<SandboxState> {
    if (!this.#apps.has(request.appId)) {
      throw new ServerError(Status.NOT_FOUND, `App ${request.appId} not found (fake Modal)`);
    }
    const definition = request.definition ?? {};
    const imageId = definition.imageId ?? "";
    if (!this.#images.has(imageId))
      throw new ServerError(Status.NOT_FOUND, `Image ${imageId} not found (fake Modal)`);
    const gpuConfig = definition.resources?.gpuConfig;
    let gpu: string | null = null;
    if (gpuConfig?.gpuType) {
      const known = FAKE_MODAL_GPU_TYPES.some((type) => type === gpuConfig.gpuType);
      if (!known) {
        throw new ServerError(
          Status.INVALID_ARGUMENT,
          `Unknown GPU type '${gpuConfig.gpuType}'; use one of ${FAKE_MODAL_GPU_TYPES.join(", ")} (fake Modal)`,
        );
      }
      gpu = `${gpuConfig.gpuType}:${gpuConfig.count || 1}`;
    }
    const timeoutSecs = definition.timeoutSecs ?? 300;
    if (!Number.isInteger(timeoutSecs) || timeoutSecs <= 0) {
      throw new ServerError(
        Status.INVALID_ARGUMENT,
        `timeout_secs must be a positive integer, got ${timeoutSecs}`,
      );
    }
    const workdir = definition.workdir ?? "/root";
    const env = this.#secretEnv(definition.secretIds ?? [], request.secretSources);
    const dir = await mkdtemp(path.join(tmpdir(), "modal-fake-sb-"));
    const mappings: Array<[string, string]> = [[workdir, dir]];
    const volumes: Record<string, string> = {};
    for (const mount of definition.volumeMounts ?? []) {
      const entry = [...this.#volumes.entries()].find(([, volume]) => volume.id === mount.volumeId);
      if (!entry)
        throw new ServerError(Status.NOT_FOUND, `Volume ${mount.volumeId} not found (fake Modal)`);
      const [name, volume] = entry;
      volume.dir ??= await mkdtemp(path.join(tmpdir(), `modal-fake-vol-${name}-`));
      mappings.push([mount.mountPath, volume.dir]);
      volumes[mount.mountPath] = name;
    }
    const state: SandboxState = {
      sandboxId: isV2 ? randomId("sb-", 26) : randomId("sb-", 22),
      taskId: randomId("ta-", 22),
      appId: request.appId,
      imageId,
      gpu,
      timeoutSecs,
      workdir,
      dir,
      env,
      tags: Object.fromEntries((request.tags ?? []).map((tag) => [tag.tagName, tag.tagValue])),
      volumes,
      isV2,
      execs: [],
      result: undefined,
      terminateCalls: 0,
      scheduled: false,
      createdAtSeconds: Date.now() / 1000,
      paths: pathMapper(mappings),
      execMap: new Map(),
      timer: undefined,
      waiters: new Set(),
    };
    this.#sandboxes.set(state.sandboxId, state);
    const schedule = (): void => {
      if (state.result) return;
      state.scheduled = true;
      this.#byTask.set(state.taskId, state);
      state.timer = setTimeout(() => {
        this.#finish(state, {
          status: GENERIC_STATUS.timeout,
          exitcode: 124,
          exception: "Sandbox timed out (fake Modal)",
        });
      }, timeoutSecs * 1000);
    };
    if (isV2 || this.#options.schedulingDelayMs <= 0) schedule();
    else setTimeout(schedule, this.#options.schedulingDelayMs);
    return state;
  }

  #routerAccess(state: SandboxState): { jwt: string; url: string } {
    if (!state.scheduled)
      throw new ServerError(
        Status.FAILED_PRECONDITION,
        `Sandbox ${state.sandboxId} has no task yet`,
      );
    return { jwt: this.#routerJwt, url: `https://127.0.0.1:${this.#port}` };
  }

  #taskIdResponse(state: SandboxState): object {
    if (!state.scheduled) return state.result ? { taskResult: state.result } : {};
    return state.result
      ? { taskId: state.taskId, taskResult: state.result }
      : { taskId: state.taskId };
  }

  #terminate(state: SandboxState): object {
    state.terminateCalls += 1;
    const existing = state.result;
    this.#finish(state, {
      status: GENERIC_STATUS.terminated,
      exitcode: 137,
      exception: "Sandbox terminated",
    });
    return { existingResult: existing };
  }

  #startExec(request: ExecStartRequest): FakeExec {
    const state = this.#task(request.taskId);
    const existing = state.execMap.get(request.execId);
    if (existing) return existing;
    if (state.result) {
      throw new ServerError(
        Status.NOT_FOUND,
        `Task ${request.taskId} has finished; no exec possible (fake Modal)`,
      );
    }
    const argv = request.commandArgs;
    let exec: FakeExec;
    if (argv[0] === FS_TOOLS_PATH) {
      exec = FakeExec.fsTools(request.execId, argv, state.paths);
    } else {
      const rewrite = (values: Record<string, string>): Record<string, string> =>
        Object.fromEntries(
          Object.entries(values).map(([key, value]) => [key, state.paths.rewrite(value)]),
        );
      const execEnv = this.#secretEnv(request.secretIds ?? [], request.secretSources);
      const cwd = state.paths.toLocal(request.workdir ?? state.workdir);
      if (cwd === undefined) {
        throw new ServerError(
          Status.INVALID_ARGUMENT,
          `workdir ${request.workdir} is outside the fake sandbox's mapped folders`,
        );
      }
      exec = FakeExec.spawn({
        id: request.execId,
        argv: argv.map((arg) => state.paths.rewrite(arg)),
        cwd,
        env: {
          ...stringMap(process.env),
          MODAL_SANDBOX_ID: state.sandboxId,
          MODAL_TASK_ID: state.taskId,
          ...rewrite(state.env),
          ...rewrite(stringMap(request.env)),
          ...rewrite(execEnv),
        },
        pipeStdout: request.stdoutConfig === 1,
        pipeStderr: request.stderrConfig === 1,
        timeoutSecs: request.timeoutSecs,
      });
      const loss = this.#losses.find((candidate) => candidate.times > 0 && candidate.when(argv));
      if (loss) {
        loss.times -= 1;
        setTimeout(() => this.loseSandbox(state.sandboxId), loss.afterMs);
      }
    }
    // Keep the remote argv in the record: that is what the client sent.
    state.execMap.set(request.execId, exec);
    state.execs.push([...argv]);
    return exec;
  }

  #controlPlaneHandlers(): Record<string, Handler> {
    return {
      AuthTokenGet: () => ({ token: fakeJwt("client") }),
      AppGetOrCreate: (raw) => {
        const request = raw as { appName: string; objectCreationType: number };
        let appId = [...this.#apps.entries()].find(([, name]) => name === request.appName)?.[0];
        if (!appId) {
          if (request.objectCreationType !== 1) {
            throw new ServerError(
              Status.NOT_FOUND,
              `App '${request.appName}' not found (fake Modal)`,
            );
          }
          appId = randomId("ap-", 22);
          this.#apps.set(appId, request.appName);
        }
        return { appId };
      },
      EnvironmentGetOrCreate: (raw) => {
        const request = raw as { deploymentName: string };
        return {
          environmentId: "en-fake",
          metadata: {
            name: request.deploymentName || "main",
            settings: { imageBuilderVersion: "2025.06", webhookSuffix: "modal.run" },
          },
        };
      },
      ImageGetOrCreate: (raw) => {
        const request = raw as {
          image?: { dockerfileCommands?: string[]; baseImages?: Array<{ imageId: string }> };
        };
        const commands = request.image?.dockerfileCommands ?? [];
        for (const base of request.image?.baseImages ?? []) {
          if (!this.#images.has(base.imageId)) {
            throw new ServerError(
              Status.NOT_FOUND,
              `Base image ${base.imageId} not found (fake Modal)`,
            );
          }
        }
        const key = JSON.stringify([
          commands,
          request.image?.baseImages?.map((base) => base.imageId) ?? [],
        ]);
        const imageId = `im-${Buffer.from(key).toString("base64url").slice(-22).padStart(22, "0")}`;
        this.#images.set(imageId, commands);
        return { imageId, result: { status: GENERIC_STATUS.success } };
      },
      SecretGetOrCreate: (raw) => {
        const request = raw as {
          deploymentName: string;
          objectCreationType: number;
          envDict: Record<string, string>;
          requiredKeys: string[];
        };
        if (request.objectCreationType === 5) {
          const secretId = randomId("st-", 22);
          this.#secrets.set(secretId, { name: undefined, env: { ...request.envDict } });
          return { secretId };
        }
        const env = this.#namedSecrets[request.deploymentName];
        if (!env)
          throw new ServerError(
            Status.NOT_FOUND,
            `Secret '${request.deploymentName}' not found (fake Modal)`,
          );
        const missing = request.requiredKeys.filter((key) => !(key in env));
        if (missing.length > 0) {
          throw new ServerError(
            Status.FAILED_PRECONDITION,
            `Secret is missing key(s): ${missing.join(", ")}`,
          );
        }
        let secretId = [...this.#secrets.entries()].find(
          ([, secret]) => secret.name === request.deploymentName,
        )?.[0];
        if (!secretId) {
          secretId = randomId("st-", 22);
          this.#secrets.set(secretId, { name: request.deploymentName, env: { ...env } });
        }
        return { secretId };
      },
      VolumeGetOrCreate: (raw) => {
        const request = raw as { deploymentName: string; objectCreationType: number };
        let volume = this.#volumes.get(request.deploymentName);
        if (!volume) {
          if (request.objectCreationType !== 1) {
            throw new ServerError(
              Status.NOT_FOUND,
              `Volume '${request.deploymentName}' not found (fake Modal)`,
            );
          }
          volume = { id: randomId("vo-", 22), dir: undefined };
          this.#volumes.set(request.deploymentName, volume);
        }
        return { volumeId: volume.id, metadata: { name: request.deploymentName } };
      },
      SandboxCreate: async (raw) => ({
        sandboxId: (await this.#createSandbox(raw as SandboxCreateRequest, false)).sandboxId,
      }),
      SandboxCreateV2: async (raw) => {
        const state = await this.#createSandbox(raw as SandboxCreateRequest, true);
        return {
          sandboxId: state.sandboxId,
          taskId: state.taskId,
          tunnels: [],
          commandRouterAccess: this.#routerAccess(state),
        };
      },
      SandboxGetTaskId: (raw) =>
        this.#taskIdResponse(this.#sandbox((raw as { sandboxId: string }).sandboxId)),
      SandboxGetTaskIdV2: (raw) =>
        this.#taskIdResponse(this.#sandbox((raw as { sandboxId: string }).sandboxId)),
      SandboxWait: async (raw, context) => {
        const request = raw as { sandboxId: string; timeout: number };
        const state = this.#sandbox(request.sandboxId);
        await this.#waitFinished(state, request.timeout, context.signal);
        return { result: state.result, metadata: { appId: state.appId, result: state.result } };
      },
      SandboxWaitV2: async (raw, context) => {
        const request = raw as { sandboxId: string; timeout: number };
        const state = this.#sandbox(request.sandboxId);
        await this.#waitFinished(state, request.timeout, context.signal);
        return { result: state.result, metadata: { appId: state.appId, result: state.result } };
      },
      SandboxTerminate: (raw) =>
        this.#terminate(this.#sandbox((raw as { sandboxId: string }).sandboxId)),
      SandboxTerminateV2: (raw) =>
        this.#terminate(this.#sandbox((raw as { sandboxId: string }).sandboxId)),
      SandboxList: (raw) => {
        const request = raw as {
          appId: string;
          beforeTimestamp: number;
          includeFinished: boolean;
          tags: Array<{ tagName: string; tagValue: string }>;
        };
        const sandboxes = [...this.#sandboxes.values()]
          .filter((state) => !request.appId || state.appId === request.appId)
          .filter((state) => request.includeFinished || !state.result)
          .filter(
            (state) => !request.beforeTimestamp || state.createdAtSeconds < request.beforeTimestamp,
          )
          .filter((state) => request.tags.every((tag) => state.tags[tag.tagName] === tag.tagValue))
          .sort((a, b) => b.createdAtSeconds - a.createdAtSeconds)
          .map((state) => ({
            id: state.sandboxId,
            createdAt: state.createdAtSeconds,
            appId: state.appId,
          }));
        return { sandboxes };
      },
      TaskGetCommandRouterAccess: (raw) => {
        const state = this.#task((raw as { taskId: string }).taskId);
        if (state.result)
          throw new ServerError(Status.NOT_FOUND, `Task ${state.taskId} has finished (fake Modal)`);
        return this.#routerAccess(state);
      },
      SandboxGetCommandRouterAccess: (raw) => {
        const state = this.#sandbox((raw as { sandboxId: string }).sandboxId);
        if (state.result)
          throw new ServerError(
            Status.NOT_FOUND,
            `Sandbox ${state.sandboxId} has finished (fake Modal)`,
          );
        return this.#routerAccess(state);
      },
    };
  }

  #routerHandlers(): Record<string, Handler> {
    const exitResponse = (exit: ExecExit | undefined): object => exit ?? {};
    const findExec = (ref: ExecRef): FakeExec => this.#exec(ref);
    return {
      TaskExecStart: (raw) => {
        this.#startExec(raw as ExecStartRequest);
        return {};
      },
      TaskExecStdioRead: async function* (raw: unknown, context: CallContext) {
        const request = raw as ExecRef & { offset: number; fileDescriptor: number };
        const exec = findExec(request);
        const output = request.fileDescriptor === 1 ? exec.stderr : exec.stdout;
        for await (const data of output.read(request.offset, context.signal)) yield { data };
      },
      TaskExecWait: async (raw, context) => {
        const exec = this.#exec(raw as ExecRef);
        const exit = await Promise.race([
          exec.exited,
          new Promise<undefined>((resolve) =>
            context.signal.addEventListener("abort", () => resolve(undefined), { once: true }),
          ),
        ]);
        if (!exit) throw new ServerError(Status.CANCELLED, "wait cancelled by the client");
        return exitResponse(exit);
      },
      TaskExecPoll: (raw) => exitResponse(this.#exec(raw as ExecRef).exit),
      TaskExecStdinWrite: (raw) => {
        const request = raw as ExecRef & { offset: number; data: Uint8Array; eof: boolean };
        const exec = this.#exec(request);
        const skip = Math.max(0, exec.stdinBytes - request.offset);
        if (request.data.length > skip) exec.writeStdin(Buffer.from(request.data.subarray(skip)));
        if (request.eof) exec.closeStdin();
        return {};
      },
      TaskExecStdinStatus: (raw) => {
        const exec = this.#exec(raw as ExecRef);
        return { numBytesWritten: exec.stdinBytes, closed: exec.stdinClosed };
      },
      TaskExecStdinWriteStream: async (raw) => {
        let exec: FakeExec | undefined;
        let skip = 0;
        for await (const message of raw as AsyncIterable<StdinWriteStreamRequest>) {
          if (message.start) {
            exec = this.#exec(message.start);
            skip = Math.max(0, exec.stdinBytes - message.start.offset);
          } else if (!exec) {
            throw new ServerError(Status.INVALID_ARGUMENT, "the first message must carry `start`");
          } else if (message.data) {
            const data = Buffer.from(message.data);
            if (data.length > skip) exec.writeStdin(data.subarray(skip));
            skip = Math.max(0, skip - data.length);
          } else if (message.end) {
            exec.closeStdin();
          }
        }
        return {};
      },
    };
  }
}

/** Starts a fake Modal on 127.0.0.1 (a free port). */
export async function startFakeModal(options: FakeModalOptions = {}): Promise<FakeModal> {
  return FakeModal.start(options);
}
