/**
 * One `exec` inside a fake sandbox: a real child process (in its own process group, so
 * terminating the sandbox ends its whole tree), or the SDK's file helper
 * (`modal-sandbox-fs-tools`) acted out in-process on the sandbox's temp folder.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { lstat, mkdir, readdir, readFile, readlink, rm, stat } from "node:fs/promises";
import { constants } from "node:os";
import path from "node:path";

/** Path of the SDK's file helper inside a real sandbox. */
export const FS_TOOLS_PATH = "/__modal/.bin/modal-sandbox-fs-tools";

/** How an exec ended: an exit code, or the number of the signal that killed it. */
export interface ExecExit {
  code?: number;
  signal?: number;
}

/**
 * Everything one stream (stdout or stderr) of an exec printed, readable from any offset
 * while more arrives, as the router's `TaskExecStdioRead` serves it.
 */
export class OutputBuffer {
  #chunks: Buffer[] = [];
  #starts: number[] = [];
  #length = 0;
  #closed = false;
  #waiters = new Set<() => void>();

  get length(): number {
    return this.#length;
  }

  get closed(): boolean {
    return this.#closed;
  }

  append(data: Buffer | string): void {
    if (this.#closed) return;
    const buffer = typeof data === "string" ? Buffer.from(data) : data;
    if (buffer.length === 0) return;
    this.#starts.push(this.#length);
    this.#chunks.push(buffer);
    this.#length += buffer.length;
    this.#wake();
  }

  close(): void {
    this.#closed = true;
    this.#wake();
  }

  /** All bytes from `offset` on. */
  slice(offset: number): Buffer {
    const parts: Buffer[] = [];
    for (let i = 0; i < this.#chunks.length; i++) {
      const start = this.#starts[i]!;
      const chunk = this.#chunks[i]!;
      if (start + chunk.length <= offset) continue;
      parts.push(start >= offset ? chunk : chunk.subarray(offset - start));
    }
    return Buffer.concat(parts);
  }

  /** Yields the bytes from `offset` on as they arrive, until the stream is closed and drained. */
  async *read(offset: number, signal: AbortSignal): AsyncGenerator<Buffer> {
    let position = offset;
    while (!signal.aborted) {
      if (position < this.#length) {
        const data = this.slice(position);
        position = this.#length;
        for (let i = 0; i < data.length; i += 1024 * 1024) yield data.subarray(i, i + 1024 * 1024);
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.#waiters.delete(done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.#waiters.add(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** Maps the sandbox's absolute paths (workdir, volume mounts) to local folders. */
export interface PathMapper {
  /** The local path for a remote absolute path, or undefined when it lies outside every mapped folder. */
  toLocal(remotePath: string): string | undefined;
  /** Rewrites every mapped remote path inside a string (an argv entry, an env value). */
  rewrite(text: string): string;
}

export interface SpawnExecOptions {
  id: string;
  argv: readonly string[];
  cwd: string;
  env: Record<string, string>;
  pipeStdout: boolean;
  pipeStderr: boolean;
  timeoutSecs?: number | undefined;
}

/** One exec of a fake sandbox. */
export class FakeExec {
  readonly id: string;
  readonly argv: readonly string[];
  readonly stdout = new OutputBuffer();
  readonly stderr = new OutputBuffer();
  readonly exited: Promise<ExecExit>;
  exit: ExecExit | undefined;
  stdinBytes = 0;
  stdinClosed = false;
  #child: ChildProcess | undefined;
  #resolveExit!: (exit: ExecExit) => void;
  #onStdin: ((data: Buffer) => void) | undefined;
  #onStdinEnd: (() => void) | undefined;
  /** Stdin that arrived before the file helper was ready for it. */
  #pendingStdin: Buffer[] = [];
  #timer: NodeJS.Timeout | undefined;

  private constructor(id: string, argv: readonly string[]) {
    this.id = id;
    this.argv = argv;
    this.exited = new Promise((resolve) => {
      this.#resolveExit = resolve;
    });
  }

  /** Starts a real child process in its own process group. */
  static spawn(options: SpawnExecOptions): FakeExec {
    const exec = new FakeExec(options.id, options.argv);
    const [file, ...args] = options.argv;
    if (file === undefined) {
      exec.stderr.append("exec: empty command\n");
      exec.finish({ code: 127 });
      return exec;
    }
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    exec.#child = child;
    child.stdin.on("error", () => {});
    child.stdout.on("data", (data: Buffer) => {
      if (options.pipeStdout) exec.stdout.append(data);
    });
    child.stderr.on("data", (data: Buffer) => {
      if (options.pipeStderr) exec.stderr.append(data);
    });
    child.stdout.on("close", () => exec.stdout.close());
    child.stderr.on("close", () => exec.stderr.close());
    child.on("error", (error: NodeJS.ErrnoException) => {
      exec.stderr.append(`exec: ${file}: ${error.message}\n`);
      exec.stdout.close();
      exec.stderr.close();
      exec.finish({ code: error.code === "ENOENT" ? 127 : 126 });
    });
    child.on("exit", (code, signal) => {
      if (code !== null) exec.finish({ code });
      else exec.finish({ signal: signal ? constants.signals[signal] : constants.signals.SIGKILL });
    });
    exec.#onStdin = (data) => child.stdin.write(data);
    exec.#onStdinEnd = () => child.stdin.end();
    if (options.timeoutSecs) {
      exec.#timer = setTimeout(() => exec.kill(), options.timeoutSecs * 1000);
    }
    return exec;
  }

  /** Acts out the SDK's file helper (`modal-sandbox-fs-tools <json>`) on the mapped folders. */
  static fsTools(id: string, argv: readonly string[], paths: PathMapper): FakeExec {
    const exec = new FakeExec(id, argv);
    void runFsTool(exec, argv[1] ?? "", paths);
    return exec;
  }

  /** Writes to the exec's stdin. */
  writeStdin(data: Buffer): void {
    if (this.stdinClosed) return;
    this.stdinBytes += data.length;
    if (this.#onStdin) this.#onStdin(data);
    else this.#pendingStdin.push(data);
  }

  /** Closes the exec's stdin (EOF). */
  closeStdin(): void {
    if (this.stdinClosed) return;
    this.stdinClosed = true;
    if (this.#onStdin) this.#onStdinEnd?.();
  }

  /** Kills the exec's whole process group with SIGKILL (a virtual exec ends as killed). */
  kill(): void {
    const child = this.#child;
    if (child?.pid !== undefined && this.exit === undefined) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
      return;
    }
    if (!child && this.exit === undefined) {
      this.stdout.close();
      this.stderr.close();
      this.finish({ signal: constants.signals.SIGKILL });
    }
  }

  /** Kills what is left of the process group even after the exec itself exited (its grandchildren). */
  killGroup(): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // the group is gone already
    }
  }

  finish(exit: ExecExit): void {
    if (this.exit !== undefined) return;
    clearTimeout(this.#timer);
    this.exit = exit;
    this.#resolveExit(exit);
  }

  /** Used by the file helper: receives stdin instead of a process. */
  receiveStdin(onData: (data: Buffer) => void, onEnd: () => void): void {
    this.#onStdin = onData;
    this.#onStdinEnd = onEnd;
    for (const data of this.#pendingStdin) onData(data);
    this.#pendingStdin = [];
    if (this.stdinClosed) onEnd();
  }
}

interface FsError {
  error_kind: string;
  message: string;
}

function fsError(kind: string, message: string): FsError {
  return { error_kind: kind, message };
}

function errnoToFsError(error: unknown): FsError {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return fsError("NotFound", "No such file or directory");
    case "EISDIR":
      return fsError("IsDirectory", "Is a directory");
    case "ENOTDIR":
      return fsError("NotDirectory", "Not a directory");
    case "EEXIST":
      return fsError("PathAlreadyExists", "File exists");
    case "ENOTEMPTY":
      return fsError("DirectoryNotEmpty", "Directory not empty");
    case "EACCES":
    case "EPERM":
      return fsError("PermissionDenied", "Permission denied");
    default:
      return fsError("Other", (error as Error).message);
  }
}

function permissions(mode: number): string {
  const bits = "rwxrwxrwx";
  let out = "";
  for (let i = 0; i < 9; i++) out += mode & (1 << (8 - i)) ? bits[i] : "-";
  return out;
}

async function fileEntry(localPath: string, remotePath: string): Promise<Record<string, unknown>> {
  const info = await lstat(localPath);
  const type = info.isSymbolicLink() ? "symlink" : info.isDirectory() ? "directory" : "file";
  return {
    name: path.posix.basename(remotePath),
    path: remotePath,
    type,
    size: info.size,
    mode: info.mode,
    permissions: permissions(info.mode),
    owner: String(info.uid),
    group: String(info.gid),
    modified_time: Math.floor(info.mtimeMs / 1000),
    symlink_target: info.isSymbolicLink() ? await readlink(localPath) : null,
  };
}

async function runFsTool(exec: FakeExec, commandJson: string, paths: PathMapper): Promise<void> {
  const fail = (error: FsError, code = 1): void => {
    exec.stderr.append(JSON.stringify({ ...error, detail: "" }));
    exec.stdout.close();
    exec.stderr.close();
    exec.finish({ code });
  };
  const succeed = (stdout?: Buffer | string): void => {
    if (stdout !== undefined) exec.stdout.append(stdout);
    exec.stdout.close();
    exec.stderr.close();
    exec.finish({ code: 0 });
  };
  let command: Record<
    string,
    { path?: string; parents?: boolean; recursive?: boolean } | undefined
  >;
  try {
    command = JSON.parse(commandJson) as typeof command;
  } catch {
    return fail(fsError("InvalidArgument", `not a JSON command: ${commandJson}`), 2);
  }
  const [operation, args] = Object.entries(command)[0] ?? [];
  const remotePath = args?.path ?? "";
  const localPath = paths.toLocal(remotePath);
  if (localPath === undefined) {
    return fail(
      fsError(
        "PermissionDenied",
        `the fake sandbox only maps its workdir and volumes, not ${remotePath}`,
      ),
    );
  }
  try {
    switch (operation) {
      case "ReadFile": {
        const info = await stat(localPath);
        if (info.isDirectory()) return fail(fsError("IsDirectory", "Is a directory"));
        return succeed(await readFile(localPath));
      }
      case "WriteFile": {
        await mkdir(path.dirname(localPath), { recursive: true });
        const info = await stat(localPath).catch(() => undefined);
        if (info?.isDirectory()) return fail(fsError("IsDirectory", "Is a directory"));
        const out: WriteStream = createWriteStream(localPath);
        out.on("error", (error) => fail(errnoToFsError(error)));
        exec.receiveStdin(
          (data) => out.write(data),
          () => out.end(() => succeed()),
        );
        return;
      }
      case "MakeDirectory": {
        if (args?.parents === false) await mkdir(localPath);
        else await mkdir(localPath, { recursive: true });
        return succeed();
      }
      case "ListFiles": {
        const info = await stat(localPath);
        if (!info.isDirectory()) return fail(fsError("NotDirectory", "Not a directory"));
        const names = (await readdir(localPath)).sort();
        const entries = await Promise.all(
          names.map((name) =>
            fileEntry(path.join(localPath, name), path.posix.join(remotePath, name)),
          ),
        );
        return succeed(JSON.stringify(entries));
      }
      case "Stat":
        return succeed(JSON.stringify(await fileEntry(localPath, remotePath)));
      case "Remove": {
        const info = await lstat(localPath);
        if (info.isDirectory() && !args?.recursive) {
          if ((await readdir(localPath)).length > 0)
            return fail(fsError("DirectoryNotEmpty", "Directory not empty"));
        }
        await rm(localPath, { recursive: true });
        return succeed();
      }
      default:
        return fail(
          fsError(
            "NotSupported",
            `the fake sandbox does not implement ${operation ?? "this command"}`,
          ),
          2,
        );
    }
  } catch (error) {
    return fail(errnoToFsError(error));
  }
}
