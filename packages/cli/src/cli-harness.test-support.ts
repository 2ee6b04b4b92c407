/**
 * Test support (not part of the build): runs the built `tmgg` bin as a child process and
 * reads what the tests' experiments leave behind.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BIN = fileURLToPath(new URL("../dist/bin.js", import.meta.url));

export interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `tmgg …` in `cwd` with `CI=true` (plain progress lines) and `env` over this process's. */
export function runTmgg(
  cwd: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; onSpawn?: (pid: number) => void } = {},
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...process.env, CI: "true", ...options.env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
  });
}

/** The non-empty lines of `<root>/invocations.log` (the tests' experiments append their run id), or none. */
export async function invocationLines(root: string): Promise<string[]> {
  try {
    return (await readFile(path.join(root, "invocations.log"), "utf8")).split("\n").filter(Boolean);
  } catch {
    return [];
  }
}
