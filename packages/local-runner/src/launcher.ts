// The launcher: a small Node process that starts the LocalRunner's experiments (see
// launcher-client.ts). A child_process.spawn blocks its caller for the fork and until
// the child has exec'd, and a fork costs more the more memory the forking process has:
// the coordinator of a large sweep would spend most of its time there. This process
// keeps a tiny heap and does the per-run file work (fresh run folder, config.json, log
// files), mostly with synchronous calls, so the coordinator only exchanges two messages
// a run.
// It uses Node built-ins only, so that it starts fast and small.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, statSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";

/** Starts one experiment in its own process group. */
export interface LaunchRequest {
  id: number;
  file: string;
  args: string[];
  cwd: string;
  /** The child's whole environment. */
  env: Record<string, string>;
  /** Emptied (or created), then given `configText` at `configPath` and the two log files. */
  runDir: string;
  configPath: string;
  configText: string;
  stdoutPath: string;
  stderrPath: string;
}

/** What the launcher answers, in this order: `started` or `failed`, then `exited` after `started`. */
export type LaunchEvent =
  | { id: number; event: "started"; pid: number }
  | {
      id: number;
      event: "failed";
      /** `prepare`: the run folder; `cwd`: the project root; `spawn`: the program. */
      stage: "prepare" | "cwd" | "spawn";
      code: string | null;
      message: string;
    }
  | { id: number; event: "exited"; code: number | null; signal: string | null };

function errorCode(error: unknown): string | null {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === "string" ? code : null;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function send(event: LaunchEvent): void {
  // Once the coordinator is gone there is no one to tell (and sending would throw).
  if (process.connected) process.send?.(event);
}

/** Says why run `id` did not start. */
function sendFailure(id: number, stage: "prepare" | "cwd" | "spawn", error: unknown): void {
  send({ id, event: "failed", stage, code: errorCode(error), message: messageOf(error) });
}

/** Process groups still running, so that a coordinator that dies does not leave them behind. */
const live = new Map<number, ChildProcess>();

async function launch(request: LaunchRequest): Promise<void> {
  const { id } = request;
  let stdout: number | undefined;
  let stderr: number | undefined;
  try {
    try {
      // An earlier attempt's folder may hold large checkpoints: removing it must not hold
      // up the other runs' launches and exits, so it goes to the thread pool.
      if (existsSync(request.runDir)) await rm(request.runDir, { recursive: true, force: true });
      mkdirSync(request.runDir, { recursive: true });
      writeFileSync(request.configPath, request.configText);
      stdout = openSync(request.stdoutPath, "w");
      stderr = openSync(request.stderrPath, "w");
    } catch (error) {
      sendFailure(id, "prepare", error);
      return;
    }
    try {
      if (!statSync(request.cwd).isDirectory()) throw new Error("not a folder");
    } catch (error) {
      sendFailure(id, "cwd", error);
      return;
    }
    let child: ChildProcess;
    try {
      child = spawn(request.file, request.args, {
        cwd: request.cwd,
        env: request.env,
        detached: true,
        stdio: ["ignore", stdout, stderr],
        windowsHide: true,
      });
    } catch (error) {
      sendFailure(id, "spawn", error);
      return;
    }
    const { pid } = child;
    child.once("error", (error) => {
      // Without a pid the program never started; with one, a later error (a failed kill)
      // changes nothing about how the run ends, which "exit" reports.
      if (pid === undefined) sendFailure(id, "spawn", error);
    });
    if (pid === undefined) return;
    live.set(pid, child);
    send({ id, event: "started", pid });
    child.once("exit", (code, signal) => {
      live.delete(pid);
      send({ id, event: "exited", code, signal });
      if (!process.connected && live.size === 0) process.exit(0);
    });
  } finally {
    // The child holds its own copies of the log descriptors.
    if (stdout !== undefined) closeSync(stdout);
    if (stderr !== undefined) closeSync(stderr);
  }
}

/** The coordinator went away (it ended, or was killed): end what it started, then leave. */
function abandon(killGraceMs: number): void {
  if (live.size === 0) process.exit(0);
  for (const pid of live.keys()) signalGroup(pid, "SIGTERM");
  setTimeout(() => {
    for (const pid of live.keys()) signalGroup(pid, "SIGKILL");
    process.exit(0);
  }, killGraceMs).unref();
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(process.platform === "win32" ? pid : -pid, signal);
  } catch {
    // already gone
  }
}

function main(): void {
  const killGraceMs = Number(process.argv[2] ?? "10000");
  process.on("message", (message) => void launch(message as LaunchRequest));
  process.on("disconnect", () => abandon(Number.isFinite(killGraceMs) ? killGraceMs : 10_000));
}

if (process.send !== undefined) main();
