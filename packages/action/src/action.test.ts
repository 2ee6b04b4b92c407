/**
 * The bundled action (dist/main.js, dist/post.js) end to end, as a child process against
 * a fake GitHub REST API and a fake artifact service on 127.0.0.1, in a real git
 * workspace whose experiments run as real child processes.
 */
import type { ChildProcess } from "node:child_process";
import { access, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ExperimentCoordinator,
  loadStageConfig,
  toDiskJson,
  type ExperimentResult,
} from "@tmgg/core";
import { startFakeModal } from "@tmgg/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  STAGE_S,
  commentPayload,
  copyDist,
  createWorkspace,
  fakes,
  git,
  MAINTAINER,
  runAction,
  runFolders,
  type Workspace,
} from "./action-harness.test-support.ts";

let dist: string;
let scratch: Workspace;

beforeAll(async () => {
  scratch = await createWorkspace({});
  dist = await copyDist(scratch.root);
});

afterAll(async () => {
  await scratch[Symbol.asyncDispose]();
});

/** Whether a process still runs: gone, or a zombie waiting to be reaped, is not. */
async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
  if (stat !== null) return !/^\d+ \(.*\) Z/.test(stat);
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("a maintainer's /sweep on a pull request", () => {
  it("runs the stage, keeps one sticky comment from plan to final report, reacts, sets the status, outputs and the artifact", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace);
    for (let i = 0; i < 120; i++) f.github.seedComment(7, `unrelated comment ${i}`);

    const run = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s\nplease"),
      env: f.env,
    });
    expect(run.stderr).toBe("");
    expect(run.code, run.stdout).toBe(0);

    const posted = f.github.commentsOn(7).filter((c) => c.user.type === "Bot");
    expect(posted).toHaveLength(1);
    const sticky = posted[0]!;
    expect(sticky.body.startsWith("<!-- tmgg-sweep:s -->")).toBe(true);
    expect(sticky.history[0]).toContain("⏳");
    expect(sticky.history.length).toBeGreaterThanOrEqual(2);
    expect(sticky.body).toContain("Best configuration");
    expect(sticky.body).toContain("learning_rate");
    expect(sticky.body).toContain("all runs completed");
    expect(sticky.body).toContain("| 6 | 6 | 0 | 0 | 0 | 0 | 100 %");
    expect(sticky.body).toContain(workspace.head.slice(0, 7));
    expect(sticky.body).toContain("https://github.com/octo/sweeps/actions/runs/4242");
    expect(f.github.reactions.map((r) => r.content)).toEqual(["eyes", "rocket"]);
    expect(f.github.reactions.every((r) => r.commentId === 555)).toBe(true);
    expect(f.github.statuses.map((s) => [s.sha, s.state, s.context])).toEqual([
      [workspace.head, "pending", "tmgg-sweep/s"],
      [workspace.head, "success", "tmgg-sweep/s"],
    ]);
    expect(f.github.statuses[1]!.description).toMatch(/^6\/6 completed, best val_loss/);
    // every page of comments was read to look for an earlier sticky comment
    expect(
      f.github.requests.filter((r) => r.method === "GET" && r.path.endsWith("/issues/7/comments"))
        .length,
    ).toBe(2);
    expect(f.github.unexpected).toEqual([]);

    expect(JSON.parse(run.outputs["best-config"]!)).toMatchObject({ learning_rate: 0.01 });
    expect(run.outputs["success-rate"]).toBe("1");
    expect(run.outputs["comment-url"]).toBe(
      `https://github.com/octo/sweeps/pull/7#issuecomment-${sticky.id}`,
    );
    const stageResult = JSON.parse(await readFile(run.outputs["stage-result"]!, "utf8")) as {
      summary: { completed: number };
      commit_sha: string;
    };
    expect(stageResult.summary.completed).toBe(6);
    expect(stageResult.commit_sha).toBe(workspace.head);
    expect(run.summary).toContain("Best configuration");

    const artifact = f.artifacts.artifacts.get("tmgg-sweep-s");
    expect(artifact?.isFinalized).toBe(true);
    expect(artifact!.bytes.length).toBe(artifact!.sizeBytes);
    const names = artifact!.bytes.toString("latin1");
    expect(names).toContain("stage_result.json");
    expect(names).toContain("report.md");
    expect(names).toMatch(/runs\/[^/]+seed=1[^/]*\.json/);
    expect(names).toMatch(/logs\/[^/]+\/stderr\.log/);

    // a second /sweep skips what completed and edits the same comment, found on page 2
    const again = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s", { id: 556 }),
      env: f.env,
    });
    expect(again.code, again.stdout).toBe(0);
    expect(f.github.commentsOn(7).filter((c) => c.user.type === "Bot")).toHaveLength(1);
    expect(sticky.body).toContain("| 6 | 6 | 0 | 0 | 0 | 6 | 100 %");
    expect(
      f.github.writes().filter((w) => w.startsWith("POST /repos/octo/sweeps/issues/7/comments")),
    ).toHaveLength(1);

    // a dry run gets its own comment and leaves the report where it is
    const report = sticky.body;
    const dry = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s --dry-run", { id: 557 }),
      env: f.env,
    });
    expect(dry.code).toBe(0);
    expect(sticky.body).toBe(report);
    const bots = f.github.commentsOn(7).filter((c) => c.user.type === "Bot");
    expect(bots.map((c) => c.body.split("\n")[0])).toEqual([
      "<!-- tmgg-sweep:s -->",
      "<!-- tmgg-sweep:s:dry-run -->",
    ]);
    expect(bots[1]!.body).toContain("**to run:** 0 · **skipped (already completed):** 6");
  });
});

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

describe("a sweep with failures", () => {
  it("reports the failure with its stderr tail, reacts 😕, sets a failure status and fails the job", async () => {
    const flaky = STAGE_S.replace("name: s", "name: flaky")
      .replace("learning_rate: [0.001, 0.01, 0.1]", "learning_rate: [0.01]\n  fail: [false, true]")
      .replace("seeds: [1, 2]", "seeds: [1]");
    await using workspace = await createWorkspace({ flaky });
    await using f = await fakes(workspace);
    const run = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep flaky"),
      env: f.env,
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("::error::[action] sweep flaky: 1 of 2 runs did not complete");
    const [sticky] = f.github.commentsOn(7);
    expect(sticky!.body).toContain("boom: this configuration fails on purpose");
    expect(f.github.reactions.map((r) => r.content)).toEqual(["eyes", "confused"]);
    expect(f.github.statuses.at(-1)).toMatchObject({
      state: "failure",
      description: expect.stringMatching(/^1\/2 completed/) as unknown,
    });
    expect(run.outputs["success-rate"]).toBe("0.5");
    const zip = f.artifacts.artifacts.get("tmgg-sweep-flaky")!.bytes;
    expect(zip.toString("latin1")).toMatch(/logs\/[^/]*fail=true[^/]*\/stderr\.log/);
  });
});

describe("who may run a sweep", () => {
  it("refuses a commenter who is not a collaborator (404) or only reads, with a short comment and 😕, and runs nothing", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace);
    const stranger = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s", { user: "stranger", id: 1 }),
      env: f.env,
    });
    const reader = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s", { user: "reader", id: 2 }),
      env: f.env,
    });
    expect([stranger.code, reader.code]).toEqual([0, 0]);
    const [first, second] = f.github.commentsOn(7);
    expect(first!.body).toContain("@stranger");
    expect(first!.body).toContain("you are not a collaborator");
    expect(second!.body).toContain("@reader");
    expect(second!.body).toContain("you have read");
    expect(f.github.reactions).toEqual([
      { commentId: 1, content: "confused" },
      { commentId: 2, content: "confused" },
    ]);
    expect(f.github.requests.some((r) => r.path.includes("/pulls/"))).toBe(false);
    expect(f.github.statuses).toEqual([]);
    expect(await runFolders(workspace, "s")).toEqual([]);
    expect(await exists(workspace.storage)).toBe(false);
  });

  it("ignores bots, edited comments, comments on issues and comments that are not /sweep, without a single API call", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace);
    const ignored = [
      commentPayload("/sweep s", { user: "renovate[bot]", userType: "Bot" }),
      commentPayload("/sweep s", { action: "edited" }),
      commentPayload("/sweep s", { isPullRequest: false }),
      commentPayload("looks good; /sweep s later"),
      commentPayload("/sweeps s"),
    ];
    for (const payload of ignored) {
      const run = await runAction({
        dist,
        workspace,
        eventName: "issue_comment",
        payload,
        env: f.env,
      });
      expect(run.code).toBe(0);
      expect(run.stdout).toContain("nothing to do");
    }
    expect(f.github.requests).toEqual([]);
  });

  it("refuses a pull request from a fork unless allow-forks is set", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace, {
      pulls: { 7: { headSha: workspace.head, headRepo: "mallory/sweeps" } },
    });
    const refused = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s", { id: 1 }),
      env: f.env,
    });
    expect(refused.code).toBe(0);
    expect(f.github.commentsOn(7)[0]!.body).toContain("comes from `mallory/sweeps`");
    expect(f.github.reactions.map((r) => r.content)).toEqual(["confused"]);
    expect(await runFolders(workspace, "s")).toEqual([]);

    const allowed = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s --dry-run", { id: 2 }),
      inputs: { "allow-forks": "true" },
      env: f.env,
    });
    expect(allowed.code, allowed.stdout).toBe(0);
    expect(f.github.reactions.map((r) => r.content)).toEqual(["confused", "eyes"]);
    expect(f.github.commentsOn(7)[1]!.body).toContain("dry run");
  });
});

describe("what a /sweep comment can ask", () => {
  it("answers a stage name that is a path or does not exist with the list of stages, and runs nothing", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace);
    for (const [id, name] of [
      [1, "../../etc"],
      [2, "nope"],
    ] as const) {
      const run = await runAction({
        dist,
        workspace,
        eventName: "issue_comment",
        payload: commentPayload(`/sweep ${name}`, { id }),
        env: f.env,
      });
      expect(run.code).toBe(0);
    }
    const [traversal, unknown] = f.github.commentsOn(7);
    expect(traversal!.body).toContain("there is no stage `../../etc`");
    expect(unknown!.body).toContain("there is no stage `nope`");
    for (const comment of [traversal!, unknown!]) {
      expect(comment.body).toContain("| `s` | 6 | `standard` | `the test stage` |");
    }
    expect(f.github.reactions.map((r) => r.content)).toEqual([
      "eyes",
      "confused",
      "eyes",
      "confused",
    ]);
    expect(await runFolders(workspace, "s")).toEqual([]);
  });

  it("--dry-run shows the plan and the estimated GPU cost and runs nothing", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace);
    const run = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s --dry-run"),
      inputs: { backend: "modal", "gpu-type": "H100" },
      env: f.env,
    });
    expect(run.code, run.stdout).toBe(0);
    const [plan] = f.github.commentsOn(7);
    expect(plan!.body.startsWith("<!-- tmgg-sweep:s:dry-run -->")).toBe(true);
    expect(plan!.body).toContain("dry run — nothing was run");
    expect(plan!.body).toContain(
      "**Runs:** 6 (3 configurations × 2 seeds) · **to run:** 6 · **skipped (already completed):** 0",
    );
    // 6 runs x 60 s timeout on an H100 at $3.9492 an hour
    expect(plan!.body).toContain("at most $0.39");
    expect(plan!.body).toContain("**Budget:** none (set `max_cost_usd` or `max_gpu_hours`");
    expect(f.github.reactions.map((r) => r.content)).toEqual(["eyes"]);
    expect(f.github.statuses).toEqual([]);
    expect(run.outputs["comment-url"]).toContain(`#issuecomment-${plan!.id}`);
    expect(await runFolders(workspace, "s")).toEqual([]);
    expect(await exists(path.join(workspace.storage, "stages", "s", "runs"))).toBe(false);
  });

  it("answers /sweep help and /sweep list, and a malformed command with the help", async () => {
    await using workspace = await createWorkspace({
      s: STAGE_S,
      broken: "name: broken\nseedz: [1]\n",
    });
    await using f = await fakes(workspace);
    for (const [id, body] of [
      [1, "/sweep help"],
      [2, "/sweep list"],
      [3, "/sweep s --fast"],
    ] as const) {
      const run = await runAction({
        dist,
        workspace,
        eventName: "issue_comment",
        payload: commentPayload(body, { id }),
        env: f.env,
      });
      expect(run.code).toBe(0);
    }
    const [help, list, malformed] = f.github.commentsOn(7);
    expect(help!.body).toContain("`/sweep <stage> --dry-run`");
    expect(list!.body).toContain("| `s` | 6 | `standard` | `the test stage` |");
    expect(list!.body).toMatch(/\| `broken` \| — \| — \| ⚠️ .*seedz/);
    expect(malformed!.body).toContain("unknown flag --fast");
    expect(malformed!.body).toContain("`/sweep list`");
    expect(f.github.reactions.map((r) => r.content)).toEqual(["eyes", "eyes", "eyes", "confused"]);
  });

  it("applies key=value overrides, and names the closest key for a misspelt one", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace);
    const run = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s seeds=3 learning_rate=0.1,0.01", { id: 1 }),
      env: f.env,
    });
    expect(run.code, run.stdout).toBe(0);
    const result = JSON.parse(await readFile(run.outputs["stage-result"]!, "utf8")) as {
      experiments: { config: { seed: number; learning_rate: number } }[];
    };
    expect(result.experiments.map((e) => [e.config.learning_rate, e.config.seed]).sort()).toEqual([
      [0.01, 3],
      [0.1, 3],
    ]);
    const sticky = f.github.commentsOn(7)[0]!;
    expect(sticky.body).toContain("Overrides: seeds=3 learning\\_rate=0.1,0.01");

    const bad = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s lerning_rate=1", { id: 2 }),
      env: f.env,
    });
    expect(bad.code).toBe(1);
    expect(sticky.body).toContain("did not start");
    expect(sticky.body).toContain(
      'unknown override key "lerning_rate"; did you mean "learning_rate"?',
    );
    expect(f.github.reactions.map((r) => r.content)).toEqual([
      "eyes",
      "rocket",
      "eyes",
      "confused",
    ]);
  });
});

describe("the commit that runs", () => {
  it("checks out the pull request's head SHA when the workspace is at another commit", async () => {
    await using workspace = await createWorkspace();
    const head = await workspace.commit(
      { "stages/s.yaml": STAGE_S.replace("[0.001, 0.01, 0.1]", "[0.01]") },
      "narrow the stage",
    );
    await git(workspace.dir, "checkout", "--quiet", "--detach", workspace.head);
    await using f = await fakes(workspace, {
      pulls: { 7: { headSha: head, headRepo: "octo/sweeps" } },
    });
    const run = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s"),
      env: f.env,
    });
    expect(run.code, run.stdout).toBe(0);
    expect(await git(workspace.dir, "rev-parse", "HEAD")).toBe(head);
    const result = JSON.parse(await readFile(run.outputs["stage-result"]!, "utf8")) as {
      commit_sha: string;
      summary: { total_experiments: number };
    };
    expect(result.commit_sha).toBe(head);
    expect(result.summary.total_experiments).toBe(2);
    expect(f.github.statuses.every((s) => s.sha === head)).toBe(true);
  });

  it("refuses clearly when the head SHA cannot be fetched", async () => {
    await using workspace = await createWorkspace();
    const missing = "0123456789abcdef0123456789abcdef01234567";
    await using f = await fakes(workspace, {
      pulls: { 7: { headSha: missing, headRepo: "octo/sweeps" } },
    });
    const run = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s"),
      env: f.env,
    });
    expect(run.code).toBe(0);
    const [refusal] = f.github.commentsOn(7);
    expect(refusal!.body).toContain(
      `not the PR head ${missing.slice(0, 7)}, and fetching ${missing.slice(0, 7)} from origin failed`,
    );
    expect(refusal!.body).toContain("actions/checkout");
    expect(await git(workspace.dir, "rev-parse", "HEAD")).toBe(workspace.head);
    expect(await runFolders(workspace, "s")).toEqual([]);
  });
});

const SLOW_STAGE = `name: slow
config_dir: configs
architectures: [models/tiny]
datasets: [data/toy]
hyperparameter_space:
  sleep_ms: [30000]
seeds: [1, 2, 3]
command: [node, train.mjs]
timeout_seconds: 120
`;

/** Waits until `count` runs of the slow stage have written their pids; returns every pid (runs and their children). */
async function waitForPids(workspace: Workspace, count: number): Promise<number[]> {
  const dir = path.join(workspace.runnerTemp, "tmgg-sweep", "outputs", "slow");
  for (let i = 0; i < 200; i++) {
    const pids: number[] = [];
    for (const run of await runFolders(workspace, "slow")) {
      const text = await readFile(path.join(dir, run, "pids"), "utf8").catch(() => "");
      if (text.split("\n").filter(Boolean).length === 2)
        pids.push(...text.split("\n").filter(Boolean).map(Number));
    }
    if (pids.length >= count * 2) return pids;
    await sleep(100);
  }
  throw new Error("the slow runs never started");
}

describe("cancellation", () => {
  it("SIGINT mid-run ends the runs in flight within seconds, saves the result and marks the comment cancelled", async () => {
    await using workspace = await createWorkspace({ slow: SLOW_STAGE });
    await using f = await fakes(workspace);
    let pids: number[] = [];
    let signalledAt = 0;
    const run = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep slow"),
      inputs: { parallelism: "2" },
      env: f.env,
      onSpawn: (child: ChildProcess) => {
        void waitForPids(workspace, 2).then((found) => {
          pids = found;
          signalledAt = Date.now();
          child.kill("SIGINT");
        });
      },
    });
    const stoppedMs = Date.now() - signalledAt;
    expect(pids).toHaveLength(4);
    expect(stoppedMs).toBeLessThan(7_500);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain("cancelled");
    const alive = [];
    for (const pid of pids)
      if (await isAlive(pid))
        alive.push(`${pid}: ${await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "")}`);
    expect(alive).toEqual([]);
    const sticky = f.github.commentsOn(7)[0]!;
    expect(sticky.body).toContain("Cancelled");
    expect(sticky.body).toMatch(/\| 3 \| 0 \| 0 \| 0 \| 3 \| 0 \|/);
    expect(f.github.statuses.at(-1)!.state).toBe("error");
    expect(f.github.reactions.map((r) => r.content)).toEqual(["eyes", "confused"]);
    // the two runs in flight are saved as cancelled; the stage result counts the third too
    const saved = await readdir(path.join(workspace.storage, "stages", "slow", "runs"));
    expect(saved).toHaveLength(2);
    expect(await exists(path.join(workspace.storage, "stages", "slow", "stage_result.json"))).toBe(
      true,
    );
    expect(run.state.phase).toBe("reported");
  });

  it("the post step marks the comment when the main step was killed before its report", async () => {
    await using workspace = await createWorkspace({ slow: SLOW_STAGE });
    await using f = await fakes(workspace);
    let pids: number[] = [];
    const main = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep slow"),
      inputs: { parallelism: "1" },
      env: f.env,
      onSpawn: (child: ChildProcess) => {
        void waitForPids(workspace, 1).then((found) => {
          pids = found;
          child.kill("SIGKILL");
        });
      },
    });
    for (const pid of pids) {
      try {
        process.kill(-pid, "SIGKILL"); // the killed step did not end its runs itself (its launcher does, after a grace)
      } catch {
        // already gone
      }
    }
    expect(main.signal).toBe("SIGKILL");
    expect(main.state["comment-id"]).toBeDefined();
    const post = await runAction({
      dist,
      workspace,
      entry: "post.js",
      eventName: "issue_comment",
      payload: commentPayload("/sweep slow"),
      state: { ...main.state, "modal-sandboxes": '["sb-left-behind"]' },
      env: { ...f.env, MODAL_CONFIG_PATH: path.join(workspace.root, "no-modal.toml") },
    });
    expect(post.code).toBe(0);
    const sticky = f.github.commentsOn(7)[0]!;
    expect(sticky.body).toContain("The job ended before the sweep finished");
    expect(sticky.body.startsWith("<!-- tmgg-sweep:slow -->\n")).toBe(true);
    // no Modal token here: the cleanup of saved sandboxes is reported as a warning, never a failure
    expect(post.stdout).toMatch(/::warning::.*terminating Modal sandboxes failed/);
  });
});

describe("the modal backend", () => {
  it("runs in Modal sandboxes with the token inputs, saves sandbox ids for the post step as they start, and the post step terminates saved ids", async () => {
    await using workspace = await createWorkspace();
    await using modal = await startFakeModal();
    await using f = await fakes(workspace);
    const { MODAL_TOKEN_ID = "", MODAL_TOKEN_SECRET = "", MODAL_SERVER_URL = "" } = modal.env();
    const env = {
      ...f.env,
      MODAL_SERVER_URL,
      MODAL_CONFIG_PATH: path.join(workspace.root, "no-modal.toml"),
    };
    const inputs = {
      backend: "modal",
      "gpu-type": "T4",
      "modal-token-id": MODAL_TOKEN_ID,
      "modal-token-secret": MODAL_TOKEN_SECRET,
    };
    const run = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s seeds=1 learning_rate=0.01"),
      inputs,
      env,
    });
    expect(run.code, run.stdout).toBe(0);
    const [sandbox] = modal.sandboxes();
    expect(modal.sandboxes()).toHaveLength(1);
    expect(run.stateText).toContain(sandbox!.sandboxId); // saved while it ran
    expect(run.state["modal-sandboxes"]).toBe("[]"); // and cleared once the runner terminated it
    const sticky = f.github.commentsOn(7)[0]!;
    expect(sticky.body).toContain("backend `modal` on `T4`");
    expect(sticky.body).toContain("estimated GPU cost **< $0.01** (estimated)"); // seconds on a T4
    const terminations = modal.terminateCount(sandbox!.sandboxId);

    const post = await runAction({
      dist,
      workspace,
      entry: "post.js",
      eventName: "issue_comment",
      payload: commentPayload("/sweep s"),
      inputs,
      state: { ...run.state, "modal-sandboxes": JSON.stringify([sandbox!.sandboxId]) },
      env,
    });
    expect(post.code, post.stdout).toBe(0);
    expect(post.stdout).toContain("terminated 1 Modal sandboxes left by the main step");
    expect(modal.terminateCount(sandbox!.sandboxId)).toBeGreaterThan(terminations);
    expect(sticky.body).not.toContain("The job ended before"); // the main step had reported
  });
});

describe("size limits", () => {
  it("keeps the comment under 65,536 characters and the job summary under 1 MiB for a stage of 3,000 groups", async () => {
    const values = (n: number) => `[${Array.from({ length: n }, (_, i) => i + 1).join(", ")}]`;
    const big = `name: big
config_dir: configs
architectures: [models/tiny]
datasets: [data/toy]
hyperparameter_space:
  model.width_with_a_long_name: ${values(60)}
  data.another_rather_long_parameter: ${values(50)}
seeds: [1]
command: [node, train.mjs]
`;
    await using workspace = await createWorkspace({ big });
    // 3,000 completed runs already in storage: the action resumes them all and reports
    const coordinator = new ExperimentCoordinator({
      backend: "local",
      storage: workspace.storage,
      projectRoot: workspace.dir,
    });
    const plan = await coordinator.planStage(
      await loadStageConfig(path.join(workspace.dir, "stages", "big.yaml")),
      {},
    );
    await coordinator.close();
    expect(plan.runs).toHaveLength(3000);
    const runsDir = path.join(workspace.storage, "stages", "big", "runs");
    await mkdir(runsDir, { recursive: true });
    const now = new Date().toISOString();
    await Promise.all(
      plan.runs.map((r, i) => {
        const result: ExperimentResult = {
          runId: r.runId,
          config: r.config,
          metrics: {
            val_loss: 1 + (i % 997) / 1000,
            accuracy: 0.5,
            loss_of_the_training_set: i / 3000,
          },
          checkpointPath: null,
          status: "completed",
          errorMessage: null,
          durationSeconds: 1.5,
          startedAt: now,
          completedAt: now,
          attempt: 1,
          backend: "local",
          gpuType: "standard",
          logsPath: null,
        };
        return writeFile(path.join(runsDir, `${r.runId}.json`), toDiskJson(result));
      }),
    );
    await using f = await fakes(workspace);
    const run = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep big"),
      env: f.env,
    });
    expect(run.code, run.stdout).toBe(0);
    const sticky = f.github.commentsOn(7)[0]!;
    expect(sticky.body.length).toBeGreaterThan(20_000);
    expect(sticky.body.length).toBeLessThan(65_536);
    expect(sticky.body).toContain("| 3,000 | 3,000 | 0 | 0 | 0 | 3,000 | 100 %");
    expect(Buffer.byteLength(run.summary)).toBeLessThan(1024 * 1024);
    expect((await stat(run.outputs["stage-result"]!)).size).toBeGreaterThan(1_000_000);
    expect(f.artifacts.artifacts.get("tmgg-sweep-big")?.isFinalized).toBe(true);
  });
});

describe("gate mode", () => {
  it("checks and answers on a cheap runner, and leaves the sweep to the next job, which takes over the comment", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace, {
      permissions: { maintainer: MAINTAINER },
    });
    const gate = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s seeds=1", { id: 1 }),
      inputs: { gate: "true" },
      env: f.env,
    });
    expect(gate.code, gate.stdout).toBe(0);
    expect(gate.outputs.run).toBe("true");
    const [sticky] = f.github.commentsOn(7);
    expect(sticky!.body).toContain("is queued");
    expect(await runFolders(workspace, "s")).toEqual([]);
    expect(f.github.statuses).toEqual([]);

    const refused = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s", { id: 2, user: "stranger" }),
      inputs: { gate: "true" },
      env: f.env,
    });
    expect(refused.outputs.run).toBe("false");
    const ignored = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("lgtm", { id: 3 }),
      inputs: { gate: "true" },
      env: f.env,
    });
    expect(ignored.outputs.run).toBe("false");

    const sweep = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s seeds=1", { id: 1 }),
      env: f.env,
    });
    expect(sweep.code, sweep.stdout).toBe(0);
    expect(f.github.commentsOn(7).filter((c) => c.user.type === "Bot")).toHaveLength(2); // the sticky and the refusal
    expect(sticky!.body).toContain("all runs completed");
  });
});

describe("events other than comments", () => {
  it("workflow_dispatch runs the stage input on the checked-out commit, reports in the job summary and sets the status", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace);
    const run = await runAction({
      dist,
      workspace,
      eventName: "workflow_dispatch",
      payload: { inputs: { stage: "s" }, sender: { login: "maintainer", type: "User" } },
      inputs: { stage: "s", overrides: "seeds=1" },
      env: f.env,
    });
    expect(run.code, run.stdout).toBe(0);
    expect(run.summary).toContain("Best configuration");
    expect(run.summary).toContain("Overrides: seeds=1");
    expect(f.github.comments.size).toBe(0);
    expect(f.github.statuses.map((s) => [s.sha, s.state])).toEqual([
      [workspace.head, "pending"],
      [workspace.head, "success"],
    ]);
    expect(run.outputs["success-rate"]).toBe("1");
    expect(run.outputs["comment-url"]).toBeUndefined();
  });

  it("pull_request from a collaborator runs the stage input and keeps the sticky comment on the pull request", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace);
    const payload = (action: string): object => ({
      action,
      pull_request: { number: 7, head: { sha: workspace.head } },
      repository: { name: "sweeps", owner: { login: "octo" }, full_name: "octo/sweeps" },
      sender: { login: "maintainer", type: "User" },
    });
    const run = await runAction({
      dist,
      workspace,
      eventName: "pull_request",
      payload: payload("opened"),
      inputs: { stage: "s" },
      env: f.env,
    });
    expect(run.code, run.stdout).toBe(0);
    const posted = f.github.commentsOn(7);
    expect(posted).toHaveLength(1);
    expect(posted[0]!.body.startsWith("<!-- tmgg-sweep:s -->")).toBe(true);
    expect(posted[0]!.body).toContain("all runs completed");
    expect(f.github.reactions).toEqual([]);
    expect(f.github.statuses.map((s) => [s.sha, s.state])).toEqual([
      [workspace.head, "pending"],
      [workspace.head, "success"],
    ]);
    expect(run.outputs["comment-url"]).toBe(
      `https://github.com/octo/sweeps/pull/7#issuecomment-${posted[0]!.id}`,
    );

    // the next push skips what completed and edits the same comment
    const again = await runAction({
      dist,
      workspace,
      eventName: "pull_request",
      payload: payload("synchronize"),
      inputs: { stage: "s" },
      env: f.env,
    });
    expect(again.code, again.stdout).toBe(0);
    expect(f.github.commentsOn(7)).toHaveLength(1);
    expect(posted[0]!.body).toContain("| 6 | 6 | 0 | 0 | 0 | 6 | 100 %");
    expect(f.github.unexpected).toEqual([]);
  });

  it("pull_request opened by someone without write access fails the job, comments nothing and runs nothing", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace);
    const run = await runAction({
      dist,
      workspace,
      eventName: "pull_request",
      payload: {
        action: "opened",
        pull_request: { number: 7, head: { sha: workspace.head } },
        repository: { name: "sweeps", owner: { login: "octo" }, full_name: "octo/sweeps" },
        sender: { login: "stranger", type: "User" },
      },
      inputs: { stage: "s" },
      env: f.env,
    });
    expect(run.code).not.toBe(0);
    expect(run.stdout).toContain("you are not a collaborator");
    expect(run.summary).toContain("you are not a collaborator");
    expect(f.github.commentsOn(7)).toEqual([]);
    expect(f.github.statuses).toEqual([]);
    expect(await runFolders(workspace, "s")).toEqual([]);
  });
});
