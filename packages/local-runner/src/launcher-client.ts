import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { LaunchEvent, LaunchRequest } from "./launcher.ts";

/** The launcher program beside this module: launcher.ts in the sources, launcher.js once built or bundled. */
const LAUNCHER_PATH = fileURLToPath(
  new URL(import.meta.url.endsWith(".ts") ? "./launcher.ts" : "./launcher.js", import.meta.url),
);

/** Why a run did not start: its folder, its project root, its program, or the launcher itself. */
export interface LaunchFailure {
  stage: "prepare" | "cwd" | "spawn" | "launcher";
  code: string | null;
  message: string;
}

export type LaunchStart = { pid: number } | { failure: LaunchFailure };

/** How the program ended; `lost` says the launcher ended first, so the end is unknown. */
export interface LaunchExit {
  code: number | null;
  signal: string | null;
  lost?: string;
}

export interface Launch {
  started: Promise<LaunchStart>;
  /** Settles after `started` gave a pid. */
  exited: Promise<LaunchExit>;
}

interface Pending {
  start: (start: LaunchStart) => void;
  exit: (exit: LaunchExit) => void;
  hasStarted: boolean;
}

/**
 * Starts programs through the launcher process (launcher.ts), started on first use. The
 * launcher lives in its own process group, so a Ctrl-C in a terminal reaches only the
 * coordinator, which ends the runs itself; when the coordinator goes away, the launcher
 * ends the process groups it started (SIGTERM, then SIGKILL after `killGraceMs`) and exits.
 * It holds this process's event loop open only while a launch is in flight.
 */
export class Launcher {
  readonly #killGraceMs: number;
  readonly #pending = new Map<number, Pending>();
  #child: ChildProcess | undefined;
  #nextId = 1;

  constructor(killGraceMs: number) {
    this.#killGraceMs = killGraceMs;
  }

  start(request: Omit<LaunchRequest, "id">): Launch {
    const id = this.#nextId++;
    let pending!: Pending;
    const started = new Promise<LaunchStart>((resolveStart) => {
      pending = { start: resolveStart, exit: () => undefined, hasStarted: false };
    });
    const exited = new Promise<LaunchExit>((resolveExit) => {
      pending.exit = resolveExit;
    });
    this.#pending.set(id, pending);
    let child: ChildProcess;
    try {
      child = this.#launcher();
    } catch (error) {
      this.#lose(id, `could not start the launcher process (${(error as Error).message})`);
      return { started, exited };
    }
    if (this.#pending.size === 1) child.channel?.ref();
    const message: LaunchRequest = { ...request, id };
    try {
      child.send(message, (error) => {
        if (error) this.#lose(id, `could not reach the launcher process (${error.message})`);
      });
    } catch (error) {
      this.#lose(id, `could not reach the launcher process (${(error as Error).message})`);
    }
    return { started, exited };
  }

  /** Lets the launcher go; call after every launch has exited. */
  async close(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const gone = once(child, "exit");
    child.ref(); // hold the event loop until it has gone
    if (child.connected) child.disconnect();
    await gone;
  }

  #launcher(): ChildProcess {
    if (this.#child !== undefined) return this.#child;
    const child = fork(LAUNCHER_PATH, [String(this.#killGraceMs)], {
      // Not the coordinator's flags (a profiler, a test runner's loader): a small plain Node.
      execArgv: ["--max-semi-space-size=1", "--max-old-space-size=64"],
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      detached: true,
      serialization: "json",
    });
    child.unref();
    child.channel?.unref();
    child.on("message", (event: LaunchEvent) => this.#onEvent(event));
    const lost = (why: string): void => {
      if (this.#child === child) this.#child = undefined;
      for (const id of [...this.#pending.keys()]) this.#lose(id, why);
    };
    child.once("error", (error) => lost(`the launcher process failed (${error.message})`));
    child.once("exit", (code, signal) =>
      lost(`the launcher process ended (${signal === null ? `exit code ${code}` : signal})`),
    );
    this.#child = child;
    return child;
  }

  #onEvent(event: LaunchEvent): void {
    const pending = this.#pending.get(event.id);
    if (pending === undefined) return;
    if (event.event === "started") {
      pending.hasStarted = true;
      pending.start({ pid: event.pid });
      return;
    }
    if (event.event === "failed") {
      pending.start({ failure: { stage: event.stage, code: event.code, message: event.message } });
    } else {
      pending.exit({ code: event.code, signal: event.signal });
    }
    this.#settle(event.id);
  }

  #lose(id: number, why: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    if (pending.hasStarted) pending.exit({ code: null, signal: null, lost: why });
    else pending.start({ failure: { stage: "launcher", code: null, message: why } });
    this.#settle(id);
  }

  #settle(id: number): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#child?.channel?.unref();
  }
}
