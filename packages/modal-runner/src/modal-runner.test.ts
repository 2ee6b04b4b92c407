import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Status } from "nice-grpc";
import { ModalClient } from "modal";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CloudRunnerFactory, type ExperimentSpec, type ProgressPoint } from "@tmgg/core";
import {
  GENERIC_STATUS,
  waitFor,
  type FakeBehaviour,
  type FakeModalOptions,
} from "@tmgg/test-utils";
import { FIXTURE_NAME, startFakeModalRig, type FakeModalRig } from "./fake-modal.test-support.ts";
import { createModalRunner, type SandboxEvent } from "./modal-runner.ts";
import { terminateSandboxes } from "./terminate-sandboxes.ts";

const isExperiment = (argv: readonly string[]): boolean => argv.includes(FIXTURE_NAME);

describe("ModalRunner", () => {
  let rig: FakeModalRig;
  let counter = 0;

  const start = async (options: FakeModalOptions = {}): Promise<FakeModalRig> => {
    rig = await startFakeModalRig(options);
    return rig;
  };

  const spec = (behaviour: FakeBehaviour, extra: Partial<ExperimentSpec> = {}): ExperimentSpec => ({
    runId: `run-${++counter}`,
    config: { learning_rate: 0.001, model: { num_layers: 4 }, seed: 1, fake: behaviour },
    command: rig.command,
    stage: "stage1",
    projectRoot: rig.projectRoot,
    ...extra,
  });

  beforeEach(async () => {
    await start();
  });

  afterEach(async () => {
    await rig.close();
  });

  it("ships the project as a tarball, writes config.json and runs the command in the project under the contract", async () => {
    const runner = rig.runner();
    const experiment = spec(
      { recordContract: true, metrics: { val_loss: 0.5 } },
      { command: [...rig.command, "{config}", "{run_dir}", "{overrides}"] },
    );
    writeFileSync(path.join(rig.projectRoot, "helper.py"), "print('hi')\n");

    const result = await runner.runExperiment(experiment, { gpuType: "T4", timeoutSeconds: 60 });

    expect(result.status).toBe("completed");
    const [sandbox] = rig.fake.sandboxes();
    const runDir = `/tmgg/runs/${experiment.runId}`;
    // What the runner sent, in the sandbox's own paths.
    const [mkdir, untar, experimentArgv, ...more] = sandbox!.execs.filter(
      (argv) => !argv[0]!.startsWith("/__modal/"),
    );
    expect(more).toEqual([]);
    expect(mkdir).toEqual(["mkdir", "-p", "/tmgg/project", runDir]);
    expect(untar).toEqual(["tar", "xzf", "/tmgg/project.tar.gz", "-C", "/tmgg/project"]);
    expect(experimentArgv!.slice(0, 7)).toEqual([
      ...rig.command,
      `${runDir}/config.json`,
      runDir,
      "learning_rate=0.001",
      "model.num_layers=4",
      "seed=1",
    ]);
    expect(experimentArgv!.slice(7)).toEqual([
      "fake.recordContract=true",
      "fake.metrics.val_loss=0.5",
    ]);
    // The tarball really was unpacked, and the experiment really ran there.
    const local = (remote: string): string =>
      path.join(sandbox!.dir, remote.slice("/tmgg/".length));
    expect(existsSync(local("/tmgg/project/helper.py"))).toBe(true);
    expect(JSON.parse(readFileSync(local(`${runDir}/config.json`), "utf8"))).toEqual(
      experiment.config,
    );
    const contract = JSON.parse(readFileSync(local(`${runDir}/contract.json`), "utf8")) as {
      cwd: string;
      env: Record<string, string>;
    };
    expect(contract.cwd).toBe(local("/tmgg/project"));
    expect(contract.env).toMatchObject({
      TMGG_RUN_ID: experiment.runId,
      TMGG_STAGE: "stage1",
      TMGG_SEED: "1",
      TMGG_RUN_DIR: local(runDir),
      TMGG_CONFIG: local(`${runDir}/config.json`),
    });
  });

  it("keeps the full logs and metrics at <cacheDir>/modal/<stage>/<runId>/ while holding only a tail in memory", async () => {
    const runner = rig.runner();
    const experiment = spec({
      printBytes: 3 * 1024 * 1024,
      stderr: "boom\n",
      exitCode: 2,
      metrics: { val_loss: 1 },
    });
    const result = await runner.runExperiment(experiment);
    expect(result.logsPath).toBe(path.join(rig.cacheDir, "modal", "stage1", experiment.runId));
    expect(statSync(path.join(result.logsPath!, "stdout.log")).size).toBe(3 * 1024 * 1024);
    expect(readFileSync(path.join(result.logsPath!, "stderr.log"), "utf8")).toBe("boom\n");
    expect(JSON.parse(readFileSync(path.join(result.logsPath!, "metrics.json"), "utf8"))).toEqual({
      val_loss: 1,
    });
    expect(result.status).toBe("failed");
    expect(result.failureKind).toBe("experiment");
    expect(result.errorMessage).toBe(
      "the experiment exited with code 2\n--- stderr (last lines) ---\nboom",
    );
  });

  it("creates each sandbox with no command, on the GPU the tier stands for, with Modal's timeout rounded up plus the margin", async () => {
    const runner = rig.runner({ timeoutMarginSeconds: 120 });
    const result = await runner.runExperiment(spec({ metrics: { val_loss: 1 } }), {
      gpuType: "multi",
      timeoutSeconds: 90.2,
    });
    expect(result.gpuType).toBe("multi");
    const create = rig.fake.callsTo("SandboxCreate")[0]!.request as {
      definition: { entrypointArgs: string[] };
    };
    expect(create.definition.entrypointArgs).toEqual([]);
    expect(rig.fake.sandboxes()[0]).toMatchObject({
      gpu: "A100:2",
      timeoutSecs: 91 + 120,
      workdir: "/tmgg",
    });
  });

  it("runs a cpu experiment in a CPU-only sandbox", async () => {
    const runner = rig.runner();
    const result = await runner.runExperiment(spec({ metrics: { val_loss: 1 } }), {
      gpuType: "cpu",
    });
    expect(result.status).toBe("completed");
    expect(rig.fake.sandboxes()[0]).toMatchObject({ gpu: null, isV2: true, terminateCalls: 1 });
  });

  it("refuses an unknown GPU type before anything is created", async () => {
    const runner = rig.runner();
    await expect(runner.runExperiment(spec({}), { gpuType: "TPU-v5" })).rejects.toThrow(
      /\[modal-runner\] GPU type "TPU-v5" is unknown; use a tier/,
    );
    expect(rig.fake.calls).toEqual([]);
  });

  it('is what CloudRunnerFactory.create("modal") builds (from the package\'s build)', async () => {
    const runner = await CloudRunnerFactory.create("modal", {
      cacheDir: rig.cacheDir,
      logLevel: "error",
    });
    expect(runner.name).toBe("modal");
    expect(runner.constructor.name).toBe("ModalRunner");
    await runner.close?.();
    expect(rig.fake.calls).toEqual([]);
  });

  it("refuses to start without Modal credentials, naming both ways to provide them", () => {
    delete process.env["MODAL_TOKEN_ID"];
    delete process.env["MODAL_TOKEN_SECRET"];
    expect(() => createModalRunner()).toThrow(
      /no Modal credentials.*modal token new.*MODAL_TOKEN_ID and MODAL_TOKEN_SECRET/,
    );
    expect(rig.fake.calls).toEqual([]);
  });

  it("builds the image once per runner from the registry tag and build commands, and reuses it", async () => {
    const runner = rig.runner({
      image: "nvcr.io/nvidia/pytorch:24.08-py3",
      buildCommands: ["RUN pip install numpy"],
    });
    const results = await runner.runSweep(
      [spec({ metrics: { val_loss: 1 } }), spec({ metrics: { val_loss: 2 } })],
      {
        parallelism: 2,
      },
    );
    expect(results.map((result) => result.status)).toEqual(["completed", "completed"]);
    expect(rig.fake.callsTo("AppGetOrCreate")).toHaveLength(1);
    const builds = rig.fake
      .callsTo("ImageGetOrCreate")
      .map(
        (call) =>
          (call.request as { image: { dockerfileCommands: string[] } }).image.dockerfileCommands,
      );
    expect(builds).toEqual([
      ["FROM nvcr.io/nvidia/pytorch:24.08-py3"],
      ["FROM base", "RUN pip install numpy"],
    ]);
    const [first, second] = rig.fake.sandboxes();
    expect(first!.imageId).toBe(second!.imageId);
  });

  it("passes named secrets, env and volumes to every sandbox", async () => {
    await rig.close();
    await start({ secrets: { wandb: { WANDB_API_KEY: "k-123" } } });
    const runner = rig.runner({
      secrets: ["wandb"],
      env: { EXTRA: "yes" },
      volumes: { datasets: "/data" },
    });
    const experiment = spec({
      recordContract: true,
      recordEnv: ["WANDB_API_KEY", "EXTRA"],
      metrics: { val_loss: 1 },
    });
    const result = await runner.runExperiment(experiment);
    expect(result.status).toBe("completed");
    const [sandbox] = rig.fake.sandboxes();
    expect(sandbox!.volumes).toEqual({ "/data": "datasets" });
    const contract = JSON.parse(
      readFileSync(path.join(sandbox!.dir, "runs", experiment.runId, "contract.json"), "utf8"),
    ) as { env: Record<string, string> };
    expect(contract.env).toMatchObject({ WANDB_API_KEY: "k-123", EXTRA: "yes" });
  });

  it("fails every run as infrastructure, without retrying or creating a sandbox, when a secret does not exist", async () => {
    const runner = rig.runner({ secrets: ["missing"] });
    const result = await runner.runExperiment(spec({ metrics: { val_loss: 1 } }));
    expect(result).toMatchObject({
      status: "failed",
      failureKind: "infrastructure",
      logsPath: null,
    });
    expect(result.errorMessage).toMatch(
      /infrastructure failure, not the experiment's .*1 attempt.*Secret 'missing' not found/,
    );
    expect(rig.fake.callsTo("SandboxCreate")).toHaveLength(0);
  });

  it("retries a run whose GPU is not available, on a new sandbox, then completes it", async () => {
    const runner = rig.runner();
    rig.fake.failNext("SandboxCreate", { times: 2, code: Status.RESOURCE_EXHAUSTED });
    const starts: string[] = [];
    const experiment = spec({ metrics: { val_loss: 0.3 } });
    const result = await runner.runExperiment(experiment, {
      gpuType: "H100",
      onStart: (runId) => starts.push(runId),
    });
    expect(result.status).toBe("completed");
    expect(result.metrics).toEqual({ val_loss: 0.3 });
    expect(starts).toEqual([experiment.runId]);
    expect(rig.fake.callsTo("SandboxCreate")).toHaveLength(3);
    expect(readFileSync(path.join(result.logsPath!, "stderr.log"), "utf8")).toMatch(
      /attempt 1: Modal has no capacity.*retried on a new sandbox\)\n.*attempt 2:/,
    );
    rig.fake.assertExhausted();
    rig.fake.assertAllTerminated();
  });

  it("reports an infrastructure failure, never an experiment failure, when no GPU comes within maxInfraRetries", async () => {
    const runner = rig.runner({ maxInfraRetries: 1 });
    rig.fake.failNext("SandboxCreate", { times: 2 });
    const result = await runner.runExperiment(spec({ metrics: { val_loss: 1 } }));
    expect(result).toMatchObject({
      status: "failed",
      failureKind: "infrastructure",
      durationSeconds: 0,
    });
    expect(result.errorMessage).toMatch(
      /^\[modal-runner\] infrastructure failure, not the experiment's \(run run-\d+, 2 attempts\)/,
    );
    expect(result.errorMessage).toContain("attempt 2: Modal has no capacity");
    rig.fake.assertExhausted();
  });

  it("retries a transient UNAVAILABLE from Modal after the SDK's own retries give up", async () => {
    const runner = rig.runner();
    rig.fake.failNext("SandboxCreate", { times: 4, code: Status.UNAVAILABLE });
    const result = await runner.runExperiment(spec({ metrics: { val_loss: 1 } }));
    expect(result.status).toBe("completed");
    expect(rig.fake.callsTo("SandboxCreate")).toHaveLength(5);
    rig.fake.assertExhausted();
  });

  it("reruns the experiment on a fresh sandbox when Modal loses the sandbox mid-run", async () => {
    const runner = rig.runner();
    rig.fake.loseSandboxes(1, { when: isExperiment, afterMs: 150 });
    const result = await runner.runExperiment(
      spec({ durationMs: 600, metrics: { val_loss: 0.7 } }),
    );
    expect(result.status).toBe("completed");
    const sandboxes = rig.fake.sandboxes();
    expect(sandboxes).toHaveLength(2);
    expect(sandboxes.map((sandbox) => sandbox.terminateCalls)).toEqual([1, 1]);
    expect(readFileSync(path.join(result.logsPath!, "stderr.log"), "utf8")).toMatch(
      /ended while the experiment ran/,
    );
    rig.fake.assertExhausted();
  });

  it("fails a run that exits 0 without writing metrics.json, saying so", async () => {
    const runner = rig.runner();
    const result = await runner.runExperiment(spec({}));
    expect(result).toMatchObject({ status: "failed", failureKind: "experiment", metrics: {} });
    expect(result.errorMessage).toBe("exited 0 but no metrics.json was written");
    expect(existsSync(path.join(result.logsPath!, "metrics.json"))).toBe(false);
  });

  it("keeps at most `parallelism` sandboxes alive during a sweep", async () => {
    const runner = rig.runner();
    let mostAlive = 0;
    const sampler = setInterval(() => {
      const alive = rig.fake.sandboxes().filter((sandbox) => sandbox.result === undefined).length;
      mostAlive = Math.max(mostAlive, alive);
    }, 5);
    const experiments = Array.from({ length: 5 }, () =>
      spec({ durationMs: 200, metrics: { val_loss: 1 } }),
    );
    const results = await runner.runSweep(experiments, { parallelism: 2 });
    clearInterval(sampler);
    expect(results.map((result) => result.status)).toEqual(experiments.map(() => "completed"));
    expect(rig.fake.sandboxes()).toHaveLength(5);
    expect(mostAlive).toBe(2);
    rig.fake.assertAllTerminated();
  });

  it("never retries the experiment's own non-zero exit", async () => {
    const runner = rig.runner();
    const result = await runner.runExperiment(spec({ exitCode: 137, stderr: "Killed\n" }));
    expect(result).toMatchObject({ status: "failed", failureKind: "experiment" });
    expect(result.errorMessage).toContain("exited with code 137");
    expect(rig.fake.callsTo("SandboxCreate")).toHaveLength(1);
  });

  it("terminates the sandbox exactly once when a call fails after it was created", async () => {
    const runner = rig.runner({ maxInfraRetries: 0 });
    rig.fake.failNext("TaskExecStart", { code: Status.PERMISSION_DENIED });
    const result = await runner.runExperiment(spec({ metrics: { val_loss: 1 } }));
    expect(result).toMatchObject({ status: "failed", failureKind: "infrastructure" });
    expect(rig.fake.sandboxes().map((sandbox) => sandbox.terminateCalls)).toEqual([1]);
  });

  it("terminates the sandbox once on timeout and on cancel", async () => {
    const runner = rig.runner();
    const timedOut = await runner.runExperiment(spec({ durationMs: 30_000 }), {
      timeoutSeconds: 0.3,
    });
    expect(timedOut.status).toBe("timeout");
    const starts: string[] = [];
    const experiment = spec({ durationMs: 30_000 });
    const running = runner.runExperiment(experiment, { onStart: (runId) => starts.push(runId) });
    await waitFor(() => starts.length === 1, 10_000);
    await runner.cancel(experiment.runId);
    expect((await running).status).toBe("cancelled");
    expect(rig.fake.sandboxes().map((sandbox) => sandbox.terminateCalls)).toEqual([1, 1]);
  });

  it("ends a run that Modal's own sandbox timeout stops as timeout, never as an infrastructure failure", async () => {
    const runner = rig.runner({ timeoutMarginSeconds: 0 });
    const result = await runner.runExperiment(spec({ durationMs: 30_000 }), { timeoutSeconds: 1 });
    expect(result.status).toBe("timeout");
    expect(result.errorMessage).toMatch(/^timed out after 1 s/);
    const sandboxes = rig.fake.sandboxes();
    expect(sandboxes).toHaveLength(1);
    // The sandbox was created with timeout_seconds (plus a zero margin) and Modal ended it.
    expect(sandboxes[0]).toMatchObject({
      timeoutSecs: 1,
      result: { status: GENERIC_STATUS.timeout },
    });
  });

  it("cancels a run still waiting for its GPU, and terminates the sandbox once it exists", async () => {
    await rig.close();
    await start({ schedulingDelayMs: 800 });
    const runner = rig.runner();
    const starts: string[] = [];
    const experiment = spec({ metrics: { val_loss: 1 } });
    const running = runner.runExperiment(experiment, { onStart: (runId) => starts.push(runId) });
    await waitFor(() => rig.fake.callsTo("SandboxCreate").length === 1, 5000);
    expect(await runner.getStatus(experiment.runId)).toBe("pending");
    const before = Date.now();
    await runner.cancel(experiment.runId);
    const result = await running;
    expect(Date.now() - before).toBeLessThan(300);
    expect(result.status).toBe("cancelled");
    expect(starts).toEqual([]);
    await waitFor(() => rig.fake.sandboxes()[0]?.terminateCalls === 1, 5000);
    expect(runner.sandboxIds()).toEqual([]);
  });

  it("reports sandbox ids as they are created, and lists the live ones", async () => {
    const events: SandboxEvent[] = [];
    const runner = rig.runner({ onSandbox: (event) => events.push(event) });
    const experiment = spec({ durationMs: 30_000 });
    const starts: string[] = [];
    const running = runner.runExperiment(experiment, { onStart: (runId) => starts.push(runId) });
    await waitFor(() => starts.length === 1, 10_000);
    const [sandbox] = rig.fake.sandboxes();
    expect(events).toEqual([{ sandboxId: sandbox!.sandboxId, runId: experiment.runId }]);
    expect(runner.sandboxIds()).toEqual([sandbox!.sandboxId]);
    await runner.cancel(experiment.runId);
    await running;
    expect(runner.sandboxIds()).toEqual([]);
  });

  it("reports progress lines while the run goes, each once", async () => {
    const runner = rig.runner({ progressIntervalMs: 50 });
    const points: ProgressPoint[] = [];
    const seenAt: number[] = [];
    const progress = [
      { step: 1, val_loss: 0.9 },
      { step: 2, val_loss: 0.4 },
    ];
    const result = await runner.runExperiment(
      spec({ progress, durationMs: 1000, metrics: { val_loss: 0.4 } }),
      {
        onProgress: (_runId, point) => {
          points.push(point);
          seenAt.push(Date.now());
        },
      },
    );
    const doneAt = Date.now();
    expect(result.status).toBe("completed");
    expect(points).toEqual(progress);
    expect(seenAt[0]!).toBeLessThan(doneAt - 300);
  });

  it("terminateSandboxes ends sandboxes by id from anywhere, counting ones already gone as terminated", async () => {
    const modal = new ModalClient({ logLevel: "error" });
    const app = await modal.apps.fromName("elsewhere", { createIfMissing: true });
    const image = modal.images.fromRegistry("python:3.12-slim");
    const a = await modal.sandboxes.create(app, image, { gpu: "T4" });
    const b = await modal.sandboxes.create(app, image, { gpu: "T4" });
    const gone = "sb-0000000000000000000000";
    const report = await terminateSandboxes([a.sandboxId, b.sandboxId, gone], {
      logLevel: "error",
    });
    expect(report.failed).toEqual([]);
    expect(report.terminated.sort()).toEqual([a.sandboxId, b.sandboxId, gone].sort());
    expect(rig.fake.terminateCount(a.sandboxId)).toBe(1);
    expect(rig.fake.terminateCount(b.sandboxId)).toBe(1);
    modal.close();
  });
});
