/**
 * The bundled action scaled out, as a child process against the fake GitHub and artifact
 * service: shard jobs (`shard: i/n`) on one storage, the aggregate job after them
 * (`aggregate: true`), budget caps from the inputs, and the dry run's cost against them.
 */
import { readFile } from "node:fs/promises";
import { shardOfRun } from "@tmgg/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  commentPayload,
  copyDist,
  createWorkspace,
  fakes,
  runAction,
  runFolders,
  type ActionRun,
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

interface SavedResult {
  summary: { total_experiments: number; completed: number };
  experiments: { run_id: string; status: string }[];
  shard?: { index: number; count: number };
  missing_runs?: string[];
  budget?: {
    limit: { gpu_hours: number | null };
    stopped_early: boolean;
    not_started: number;
  };
}

async function savedResult(run: ActionRun): Promise<SavedResult> {
  return JSON.parse(await readFile(run.outputs["stage-result"]!, "utf8")) as SavedResult;
}

describe("a sweep split over shard jobs", () => {
  it("each shard job runs only its part and edits only its line; the aggregate job after them posts one final report holding every run", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace);
    const job = (inputs: Record<string, string>): Promise<ActionRun> =>
      runAction({
        dist,
        workspace,
        eventName: "issue_comment",
        payload: commentPayload("/sweep s", { id: 1 }),
        inputs,
        env: f.env,
      });
    const gate = await job({ gate: "true" });
    expect(gate.outputs.run).toBe("true");
    const [sticky] = f.github.commentsOn(7);
    expect(sticky!.body).toContain("is queued");

    // two shard jobs at once: each runs the runs that hash to it and adds its own line
    const [one, two] = await Promise.all([job({ shard: "1/3" }), job({ shard: "2/3" })]);
    for (const [index, run] of [
      [1, one],
      [2, two],
    ] as const) {
      expect(run.code, run.stdout).toBe(0);
      const result = await savedResult(run);
      expect(result.shard).toEqual({ index, count: 3 });
      for (const experiment of result.experiments)
        expect(shardOfRun(experiment.run_id, 3)).toBe(index);
      expect(sticky!.body).toMatch(
        new RegExp(
          `^- \\*\\*shard ${index} of 3\\*\\* ✅ finished: ${result.experiments.length} of ${result.experiments.length} runs done`,
          "m",
        ),
      );
    }
    expect(sticky!.body).not.toContain("shard 3 of 3");
    expect(f.github.commentsOn(7)).toHaveLength(1);
    expect(f.github.statuses.map((s) => s.state)).toEqual(["pending", "pending"]);
    expect(f.github.reactions.map((r) => r.content)).not.toContain("rocket");
    expect(f.artifacts.artifacts.get("tmgg-sweep-s-shard-1-of-3")?.isFinalized).toBe(true);
    const firstTwo = (await savedResult(one)).experiments.length;
    const secondTwo = (await savedResult(two)).experiments.length;

    // joined before shard 3 ran: the report says which runs have no result, and the job fails
    const early = await job({ aggregate: "true" });
    expect(early.code).toBe(1);
    expect(early.stdout).toContain(
      `${6 - firstTwo - secondTwo} runs of the stage have no result (a shard job failed or did not run`,
    );
    expect(sticky!.body).toContain("have no result yet");
    expect(f.github.statuses.at(-1)!.state).toBe("failure");

    const three = await job({ shard: "3/3" });
    expect(three.code, three.stdout).toBe(0);
    const ranBefore = (await runFolders(workspace, "s")).length;
    expect(ranBefore).toBe(6); // every run once, over the three shards

    const final = await job({ aggregate: "true" });
    expect(final.code, final.stdout).toBe(0);
    expect(await runFolders(workspace, "s")).toHaveLength(ranBefore); // the aggregate job ran nothing
    const bots = f.github.commentsOn(7).filter((c) => c.user.type === "Bot");
    expect(bots).toHaveLength(1);
    expect(sticky!.body.startsWith("<!-- tmgg-sweep:s -->")).toBe(true);
    expect(sticky!.body).toContain("| 6 | 6 | 0 | 0 | 0 | 0 | 100 %");
    expect(sticky!.body).toContain("all runs completed");
    expect(sticky!.body).not.toContain("tmgg-shard:");
    const result = await savedResult(final);
    expect(result.summary).toMatchObject({ total_experiments: 6, completed: 6 });
    expect(result.missing_runs).toBeUndefined();
    expect(f.github.statuses.at(-1)).toMatchObject({
      state: "success",
      context: "tmgg-sweep/s",
      description: expect.stringMatching(/^6\/6 completed, best val_loss/) as unknown,
    });
    expect(f.github.reactions.at(-1)!.content).toBe("rocket");
    expect(final.outputs["success-rate"]).toBe("1");
    expect(f.artifacts.artifacts.get("tmgg-sweep-s")?.isFinalized).toBe(true);
    expect(f.github.unexpected).toEqual([]);
  });

  it("refuses a shard that is not i/n, and shard and aggregate together, running nothing", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace);
    const dispatch = (inputs: Record<string, string>): Promise<ActionRun> =>
      runAction({
        dist,
        workspace,
        eventName: "workflow_dispatch",
        payload: { sender: { login: "maintainer", type: "User" } },
        inputs: { stage: "s", ...inputs },
        env: f.env,
      });
    const bad = await dispatch({ shard: "4/3" });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("::error::[action] input shard 4/3 is not valid");
    const both = await dispatch({ shard: "1/3", aggregate: "true" });
    expect(both.code).toBe(1);
    expect(both.stdout).toContain("inputs shard and aggregate are both set");
    const cost = await dispatch({ "max-cost-usd": "0" });
    expect(cost.stdout).toContain("input max-cost-usd must be a number > 0");
    expect(await runFolders(workspace, "s")).toEqual([]);
    expect(f.github.requests).toEqual([]);
  });
});

const PACED = `name: paced
config_dir: configs
architectures: [models/tiny]
datasets: [data/toy]
hyperparameter_space:
  learning_rate: [0.001, 0.01, 0.1]
  sleep_ms: [600]
seeds: [1, 2]
command: [node, train.mjs]
timeout_seconds: 2
`;

describe("budgets", () => {
  it("stops starting runs at the max-gpu-hours input, which a comment cannot raise, and the report says how many were not started", async () => {
    await using workspace = await createWorkspace({ paced: PACED });
    await using f = await fakes(workspace);
    // one GPU per run, 2 s timeout: 3 GPU-seconds let a run start only while the runs
    // before it used at most 1 s
    const run = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep paced max_gpu_hours=1"),
      inputs: { parallelism: "1", "max-gpu-hours": String(3 / 3600) },
      env: f.env,
    });
    expect(run.code, run.stdout).toBe(0);
    const ran = (await runFolders(workspace, "paced")).length;
    expect(ran).toBeGreaterThanOrEqual(1);
    expect(ran).toBeLessThan(6);
    const result = await savedResult(run);
    expect(result.budget).toMatchObject({
      limit: { gpu_hours: 3 / 3600 },
      stopped_early: true,
      not_started: 6 - ran,
    });
    const sticky = f.github.commentsOn(7)[0]!;
    expect(sticky.body).toContain(`budget reached: ${6 - ran} runs not started`);
    expect(run.stdout).toContain(`::warning::[coordinator] budget reached: ${6 - ran} runs`);
    expect(f.github.statuses.at(-1)).toMatchObject({
      state: "success",
      description: expect.stringContaining(`budget reached: ${6 - ran} not started`) as unknown,
    });
    expect(f.github.reactions.map((r) => r.content)).toEqual(["eyes", "confused"]);
  });

  it("--dry-run shows the cost against the budget, and a shard's share of it", async () => {
    await using workspace = await createWorkspace();
    await using f = await fakes(workspace);
    const inputs = { backend: "modal", "gpu-type": "H100", "max-cost-usd": "1" };
    const comment = await runAction({
      dist,
      workspace,
      eventName: "issue_comment",
      payload: commentPayload("/sweep s --dry-run max_cost_usd=0.2"),
      inputs,
      env: f.env,
    });
    expect(comment.code, comment.stdout).toBe(0);
    const [plan] = f.github.commentsOn(7);
    // 6 runs x 60 s on an H100 at $3.9492 an hour: $0.066 a run at worst
    expect(plan!.body).toContain("**Estimated GPU cost:** at most $0.39, 0.10 GPU-hours");
    expect(plan!.body).toContain(
      "**Budget:** max_cost_usd $0.20: ⚠️ the worst case passes it, so a run starts only while the runs started could not pass it at their timeout (3 runs at once at most)",
    );

    const shard = await runAction({
      dist,
      workspace,
      eventName: "workflow_dispatch",
      payload: { sender: { login: "maintainer", type: "User" } },
      inputs: { ...inputs, stage: "s", "dry-run": "true", shard: "1/3" },
      env: f.env,
    });
    expect(shard.code, shard.stdout).toBe(0);
    expect(shard.summary).toContain("(shard 1 of 3)");
    expect(shard.summary).toContain("**Budget:** max_cost_usd $0.33 (this shard's 1/3 share)");
    expect(await runFolders(workspace, "s")).toEqual([]);
    expect(f.github.statuses).toEqual([]);
  });
});
