/**
 * A fake experiment for real runners (a script, not a module): it acts out the
 * FakeBehaviour in `config.fake` of the resolved config ($TMGG_CONFIG, or the first
 * argument) under the experiment contract, writing metrics.json, metrics.jsonl and
 * checkpoints/ in $TMGG_RUN_DIR. Node runs it directly (type stripping, Node >= 22.18):
 *
 *   node experiment-fixture.ts [config.json]
 *   node experiment-fixture.ts --sleep <ignoreSigterm>   (a grandchild: sleeps until killed)
 */
import { spawn } from "node:child_process";
import { appendFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Writable } from "node:stream";
import type { FakeBehaviour } from "./fake-runner.ts";

function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

async function main(): Promise<void> {
  const startedAtMs = Date.now();
  const configPath = process.env["TMGG_CONFIG"] ?? process.argv[2];
  if (!configPath) {
    process.stderr.write("experiment-fixture: no config: set TMGG_CONFIG or pass the config path\n");
    process.exit(2);
  }
  const config = JSON.parse(readFileSync(configPath, "utf8")) as { fake?: FakeBehaviour };
  const behaviour = config.fake ?? {};
  const runDir = process.env["TMGG_RUN_DIR"] ?? path.dirname(configPath);
  const runDirAtStart = readdirSync(runDir).sort();
  if (behaviour.ignoreSigterm) process.on("SIGTERM", () => {});

  const pids: number[] = [];
  for (let i = 0; i < (behaviour.grandchildren ?? 0); i++) {
    const child = spawn(process.execPath, [process.argv[1]!, "--sleep", String(behaviour.ignoreSigterm === true)], {
      stdio: "ignore",
    });
    if (child.pid !== undefined) pids.push(child.pid);
  }
  if (pids.length > 0) writeFileSync(path.join(runDir, "pids.json"), JSON.stringify({ pid: process.pid, pids }));

  if (behaviour.stdout) await write(process.stdout, behaviour.stdout);
  if (behaviour.stderr) await write(process.stderr, behaviour.stderr);
  if (behaviour.printBytes) {
    const line = `${"x".repeat(1024 * 1024 - 1)}\n`;
    let left = behaviour.printBytes;
    while (left > 0) {
      const chunk = left >= line.length ? line : line.slice(line.length - left);
      await write(process.stdout, chunk);
      left -= chunk.length;
    }
  }
  if (behaviour.checkpoint) {
    mkdirSync(path.join(runDir, "checkpoints"), { recursive: true });
    writeFileSync(path.join(runDir, "checkpoints", "model.ckpt"), "weights");
  }
  const progressFile = path.join(runDir, "metrics.jsonl");
  for (const point of behaviour.progress ?? []) {
    const line = `${JSON.stringify(point)}\n`;
    if (behaviour.progressPauseMs) {
      const half = Math.floor(line.length / 2);
      appendFileSync(progressFile, line.slice(0, half));
      await sleep(behaviour.progressPauseMs);
      appendFileSync(progressFile, line.slice(half));
    } else {
      appendFileSync(progressFile, line);
    }
  }

  await sleep(behaviour.durationMs ?? 5);

  if (behaviour.recordContract) {
    const names = [...(behaviour.recordEnv ?? []), "CUDA_VISIBLE_DEVICES"];
    const env: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (name.startsWith("TMGG_") || names.includes(name)) env[name] = value;
    }
    const contract = {
      argv: process.argv.slice(2),
      cwd: process.cwd(),
      env,
      runDirAtStart,
      startedAtMs,
      endedAtMs: Date.now(),
    };
    writeFileSync(path.join(runDir, "contract.json"), JSON.stringify(contract, null, 2));
  }
  if (behaviour.metrics) writeFileSync(path.join(runDir, "metrics.json"), JSON.stringify(behaviour.metrics));
  // Grandchildren are left running on purpose: ending them is the runner's job.
  process.exit(behaviour.exitCode ?? 0);
}

if (process.argv[2] === "--sleep") {
  if (process.argv[3] === "true") process.on("SIGTERM", () => {});
  setInterval(() => {}, 60_000);
} else {
  await main();
}
