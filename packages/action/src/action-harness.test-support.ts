/**
 * Runs the bundled action (`dist/main.js`, copied out of the repository so it cannot
 * lean on node_modules) as a child process, the way the Actions runner does: INPUT_*
 * env, the event payload in GITHUB_EVENT_PATH, GITHUB_OUTPUT / GITHUB_STATE /
 * GITHUB_STEP_SUMMARY files, the workspace as cwd. The workspace is a real git repo
 * with a bare `origin` beside it.
 */
import { execFile, spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { FakeArtifactService } from "./fake-artifacts.test-support.ts";
import { FakeGitHub, type FakeGitHubOptions } from "./fake-github.test-support.ts";

const exec = promisify(execFile);
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** The experiment the test stages run: val_loss depends on learning_rate and the seed. */
export const TRAIN_MJS = `import { readFileSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
const config = JSON.parse(readFileSync(process.env.TMGG_CONFIG, "utf8"));
const dir = process.env.TMGG_RUN_DIR;
if (config.sleep_ms) {
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 120000)"], { stdio: "ignore" });
  writeFileSync(dir + "/pids", process.pid + "\\n" + child.pid + "\\n");
  await new Promise((resolve) => setTimeout(resolve, config.sleep_ms));
  child.kill();
}
if (config.fail) {
  console.error("boom: this configuration fails on purpose");
  process.exit(3);
}
const lr = config.learning_rate ?? 0.1;
const val_loss = Math.abs(Math.log10(lr) + 2) + config.seed * 0.01 + (config.offset ?? 0);
writeFileSync(dir + "/metrics.json", JSON.stringify({ val_loss, accuracy: 1 - val_loss / 10 }));
`;

export const STAGE_S = `name: s
description: the test stage
config_dir: configs
architectures: [models/tiny]
datasets: [data/toy]
hyperparameter_space:
  learning_rate: [0.001, 0.01, 0.1]
seeds: [1, 2]
command: [node, train.mjs]
timeout_seconds: 60
`;

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await exec("git", args, { cwd });
  return stdout.trim();
}

export interface Workspace extends AsyncDisposable {
  root: string;
  /** The checkout the action runs in. */
  dir: string;
  origin: string;
  runnerTemp: string;
  storage: string;
  head: string;
  /** Writes files, commits them, pushes to origin; returns the new SHA. */
  commit(files: Record<string, string>, message: string): Promise<string>;
}

export async function createWorkspace(
  stages: Record<string, string> = { s: STAGE_S },
): Promise<Workspace> {
  const root = await mkdtemp(path.join(tmpdir(), "tmgg-action-"));
  const origin = path.join(root, "origin.git");
  const dir = path.join(root, "work");
  const runnerTemp = path.join(root, "runner-temp");
  await mkdir(runnerTemp);
  await exec("git", ["init", "--quiet", "--bare", origin]);
  await exec("git", ["init", "--quiet", "-b", "main", dir]);
  await git(dir, "config", "user.email", "test@example.com");
  await git(dir, "config", "user.name", "test");
  await git(dir, "remote", "add", "origin", origin);
  const commit = async (files: Record<string, string>, message: string): Promise<string> => {
    for (const [name, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), text);
    }
    await git(dir, "add", "-A");
    await git(dir, "commit", "--quiet", "-m", message);
    await git(dir, "push", "--quiet", "origin", "HEAD:refs/heads/main", "--force");
    return git(dir, "rev-parse", "HEAD");
  };
  const files: Record<string, string> = {
    "train.mjs": TRAIN_MJS,
    "configs/models/tiny.yaml": "hidden: 4\n",
    "configs/data/toy.yaml": "nodes: 8\n",
    ".gitignore": ".tmgg/\n",
  };
  for (const [name, text] of Object.entries(stages)) files[`stages/${name}.yaml`] = text;
  const head = await commit(files, "stages");
  return {
    root,
    dir,
    origin,
    runnerTemp,
    storage: path.join(root, "results"),
    head,
    commit,
    async [Symbol.asyncDispose]() {
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A copy of the built dist/ outside the repository, made once per test file. */
export async function copyDist(into: string): Promise<string> {
  const target = path.join(into, "action-dist");
  await cp(path.join(REPO_ROOT, "dist"), target, { recursive: true });
  return target;
}

export interface ActionRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  /** The GITHUB_STATE file as written: every saveState, in order. */
  stateText: string;
  summary: string;
}

/** Parses a GITHUB_OUTPUT / GITHUB_STATE file (`name<<delimiter` … `delimiter`). */
export function parseFileCommands(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<]+)<<(.+)$/.exec(lines[i]!);
    if (!match) continue;
    const [, name, delimiter] = match;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i]!);
    values[name!] = value.join("\n");
  }
  return values;
}

export interface RunActionOptions {
  dist: string;
  workspace: Workspace;
  eventName: string;
  payload: object;
  inputs?: Record<string, string>;
  env?: Record<string, string>;
  /** Saved state handed to the post step as STATE_* env. */
  state?: Record<string, string>;
  entry?: "main.js" | "post.js";
  /** Called once the process runs, to signal or kill it. */
  onSpawn?: (child: import("node:child_process").ChildProcess) => void;
  timeoutMs?: number;
}

let runCounter = 0;

export async function runAction(options: RunActionOptions): Promise<ActionRun> {
  const { workspace } = options;
  const files = path.join(workspace.root, `run-${++runCounter}`);
  await mkdir(files);
  const eventPath = path.join(files, "event.json");
  const outputFile = path.join(files, "output");
  const stateFile = path.join(files, "state");
  const summaryFile = path.join(files, "summary.md");
  await writeFile(eventPath, JSON.stringify(options.payload));
  for (const file of [outputFile, stateFile, summaryFile]) await writeFile(file, "");
  const inputs = {
    "github-token": "test-token",
    storage: workspace.storage,
    "progress-interval-seconds": "0",
    ...options.inputs,
  };
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? workspace.root,
    GITHUB_ACTIONS: "true",
    GITHUB_EVENT_NAME: options.eventName,
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_REPOSITORY: "octo/sweeps",
    GITHUB_RUN_ID: "4242",
    GITHUB_RUN_ATTEMPT: "1",
    GITHUB_SERVER_URL: "https://github.com",
    GITHUB_SHA: workspace.head,
    GITHUB_WORKSPACE: workspace.dir,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STATE: stateFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    RUNNER_TEMP: workspace.runnerTemp,
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])),
    ...Object.fromEntries(Object.entries(options.state ?? {}).map(([k, v]) => [`STATE_${k}`, v])),
    ...options.env,
  };
  const child = spawn(process.execPath, [path.join(options.dist, options.entry ?? "main.js")], {
    cwd: workspace.dir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  options.onSpawn?.(child);
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on("close", (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  return {
    code,
    signal,
    stdout,
    stderr,
    outputs: parseFileCommands(await readFile(outputFile, "utf8")),
    state: parseFileCommands(await readFile(stateFile, "utf8")),
    stateText: await readFile(stateFile, "utf8"),
    summary: await readFile(summaryFile, "utf8"),
  };
}

/** An issue_comment payload for a comment on pull request `pr`. */
export function commentPayload(
  body: string,
  options: {
    pr?: number;
    user?: string;
    userType?: string;
    action?: string;
    isPullRequest?: boolean;
    id?: number;
  } = {},
): object {
  const user = { login: options.user ?? "maintainer", type: options.userType ?? "User" };
  return {
    action: options.action ?? "created",
    issue: {
      number: options.pr ?? 7,
      ...(options.isPullRequest === false
        ? {}
        : { pull_request: { url: "https://api.github.com/x" } }),
    },
    comment: { id: options.id ?? 555, body, user, author_association: "OWNER" },
    repository: { name: "sweeps", owner: { login: "octo" }, full_name: "octo/sweeps" },
    sender: user,
  };
}

export const MAINTAINER = { permission: "write", role_name: "maintain" };

/** A fake GitHub (PR 7 at the workspace's head, a maintainer and a reader) and a fake artifact service, with the env that points the action at them. */
export async function fakes(
  workspace: Workspace,
  options: FakeGitHubOptions = {},
): Promise<
  {
    github: FakeGitHub;
    artifacts: FakeArtifactService;
    env: Record<string, string>;
  } & AsyncDisposable
> {
  const github = await FakeGitHub.start({
    pulls: { 7: { headSha: workspace.head, headRepo: "octo/sweeps" } },
    permissions: { maintainer: MAINTAINER, reader: { permission: "read", role_name: "read" } },
    ...options,
  });
  const artifacts = await FakeArtifactService.start();
  return {
    github,
    artifacts,
    env: {
      GITHUB_API_URL: github.url,
      ACTIONS_RESULTS_URL: `${artifacts.url}/`,
      ACTIONS_RUNTIME_TOKEN: FakeArtifactService.runtimeToken(),
    },
    async [Symbol.asyncDispose]() {
      await github[Symbol.asyncDispose]();
      await artifacts[Symbol.asyncDispose]();
    },
  };
}

/** Run folders the local runner made under RUNNER_TEMP: none means nothing ran. */
export async function runFolders(workspace: Workspace, stage: string): Promise<string[]> {
  try {
    return await readdir(path.join(workspace.runnerTemp, "tmgg-sweep", "outputs", stage));
  } catch {
    return [];
  }
}
