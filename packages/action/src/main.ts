/**
 * The action's `main` step. `run()` is the one place where errors become output
 * (core.setFailed); everything below returns an outcome or throws.
 *
 * Order of work: ignore what is not a command → authorize (collaborator permission API)
 * → refuse fork PRs unless allowed → 👀 → check out exactly the PR's head SHA → resolve
 * the stage against the files that exist → run through the coordinator with a sticky
 * comment updated as runs finish → final report → job summary, outputs, artifact →
 * commit status → 🚀 or 😕.
 *
 * Scaled out (inputs `shard` and `aggregate`): each shard job runs its part and edits only
 * its own line of the sticky comment; the aggregate job after them joins every stored run
 * of the stage and posts the final report, status and reaction.
 */
import path from "node:path";
import * as core from "@actions/core";
import { context } from "@actions/github";
import {
  CloudRunnerFactory,
  ExperimentCoordinator,
  applyStageOverrides,
  estimateRunsCostUsd,
  estimateStageBudget,
  loadBaseConfig,
  loadStageConfig,
  renderMarkdown,
  renderProgressMarkdown,
  type CloudStorage,
  type CoordinatorEvent,
  type ExperimentResult,
  type RunStageOptions,
  type Shard,
  type StageConfig,
  type StageResult,
} from "@tmgg/core";
import { createLocalRunner } from "@tmgg/local-runner";
import { createModalRunner } from "@tmgg/modal-runner";
import { createS3Storage } from "@tmgg/s3-storage";
import { stageArtifact, uploadArtifact, type StagedArtifact } from "./artifacts.ts";
import { authorize } from "./authorize.ts";
import { CheckoutError, checkoutCommit, currentCommit } from "./checkout.ts";
import type { SweepCommand } from "./command.ts";
import { GitHubApi, type CommitState, type PullRequestInfo, type Reaction } from "./github-api.ts";
import { InputError, readInputs, type ActionInputs } from "./inputs.ts";
import {
  HELP_TEXT,
  code,
  dryRunMarker,
  dryRunMarkdown,
  queuedMarkdown,
  refusalBody,
  stageErrorMarkdown,
  stageListMarkdown,
  stickyMarker,
} from "./messages.ts";
import { RecordingRunner } from "./recording-runner.ts";
import { ShardProgressComment, shardLine } from "./shard-progress.ts";
import { STATE } from "./state.ts";
import { listStages, stageFile } from "./stages.ts";
import { StickyComment } from "./sticky-comment.ts";
import { readTrigger, type Trigger } from "./trigger.ts";

/** What a job does with a run command (inputs `shard` and `aggregate`). */
type Mode = { kind: "run" } | { kind: "shard"; shard: Shard } | { kind: "aggregate" };

/** How a handled event ended: the job fails unless `isOk`. */
interface Outcome {
  isOk: boolean;
  message: string;
}

const OK: Outcome = { isOk: true, message: "" };
/** The job summary holds 1 MiB; a character can take up to 4 bytes. */
const SUMMARY_MAX_CHARS = 250_000;
/** The artifact's full report: large but bounded, so a 100k-run stage still renders. */
const FULL_REPORT_MAX_CHARS = 20_000_000;
const LOCAL_KILL_GRACE_MS = 3_000;

CloudRunnerFactory.register("local", (options) => createLocalRunner(options));
CloudRunnerFactory.register("modal", (options) => createModalRunner(options));

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Aborted on SIGINT/SIGTERM (the runner's cancel sends SIGINT, then SIGTERM 7.5 s later). */
function watchSignals(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) return;
    core.info(`${name}: cancelling the runs in flight; finished runs are saved`);
    controller.abort(new Error(`cancelled by ${name}`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

function runUrl(): string | undefined {
  const server = process.env.GITHUB_SERVER_URL ?? "https://github.com";
  const repository = process.env.GITHUB_REPOSITORY;
  const id = process.env.GITHUB_RUN_ID;
  if (!repository || !id) return undefined;
  const attempt = Number(process.env.GITHUB_RUN_ATTEMPT ?? "1");
  return `${server}/${repository}/actions/runs/${id}${attempt > 1 ? `/attempts/${attempt}` : ""}`;
}

function workspace(): string {
  return path.resolve(process.env.GITHUB_WORKSPACE || process.cwd());
}

/** One handled event: what it needs from GitHub and what it has said so far. */
class Session {
  readonly #api: GitHubApi;
  readonly #inputs: ActionInputs;
  readonly #trigger: Exclude<Trigger, { kind: "ignore" }>;
  readonly #signal: AbortSignal;
  readonly #cwd = workspace();
  readonly #runUrl = runUrl();
  #sticky: StickyComment | null = null;
  #shardComment: ShardProgressComment | null = null;
  #headSha: string | null = null;
  #statusContext: string | null = null;
  /** Gate mode: a real run was asked for and passed every check. */
  shouldRun = false;

  constructor(
    api: GitHubApi,
    inputs: ActionInputs,
    trigger: Exclude<Trigger, { kind: "ignore" }>,
    signal: AbortSignal,
  ) {
    this.#api = api;
    this.#inputs = inputs;
    this.#trigger = trigger;
    this.#signal = signal;
  }

  get #prNumber(): number | null {
    return this.#trigger.kind === "dispatch" ? null : this.#trigger.prNumber;
  }

  async #react(content: Reaction): Promise<void> {
    if (this.#trigger.kind !== "comment") return;
    try {
      await this.#api.react(this.#trigger.commentId, content);
    } catch (error) {
      core.warning(`[action] could not add the ${content} reaction: ${errorMessage(error)}`);
    }
  }

  /** A reply that is not the sticky comment: help, the stage list. Without a PR it goes to the log and the job summary. */
  async #reply(body: string): Promise<string | undefined> {
    const prNumber = this.#prNumber;
    if (prNumber === null) {
      core.info(body);
      await core.summary.addRaw(body).write();
      return undefined;
    }
    const ref = await this.#api.createComment(prNumber, body);
    return ref.htmlUrl;
  }

  /** Says no and runs nothing: a short comment and 😕. Refusing a comment is not a job failure; refusing an event with no one to answer is. */
  async #refuse(text: string): Promise<Outcome> {
    core.notice(`tmgg-sweep refused: ${text.split("\n")[0]}`);
    if (this.#trigger.kind === "comment") {
      await this.#api.createComment(this.#trigger.prNumber, refusalBody(text, this.#trigger.actor));
      await this.#react("confused");
      return OK;
    }
    await core.summary.addRaw(refusalBody(text, undefined)).write();
    return { isOk: false, message: `[action] ${text}` };
  }

  async #status(state: CommitState, description: string): Promise<void> {
    if (!this.#headSha || !this.#statusContext) return;
    try {
      await this.#api.createStatus(
        this.#headSha,
        state,
        this.#statusContext,
        description,
        this.#runUrl,
      );
    } catch (error) {
      core.warning(
        `[action] could not set the commit status (needs statuses: write): ${errorMessage(error)}`,
      );
    }
  }

  async handle(): Promise<Outcome> {
    const { actor, command } = this.#trigger;
    const { permission } = this.#inputs;
    const access = await authorize(this.#api, actor, permission);
    if (!access.isAllowed) {
      return this.#refuse(
        `\`/sweep\` needs the ${permission} role on this repository or higher; ${access.role ? `you have ${access.role}` : "you are not a collaborator"}. Nothing was run.`,
      );
    }
    let pr: PullRequestInfo | null = null;
    if (this.#prNumber !== null) {
      pr = await this.#api.pullRequest(this.#prNumber);
      const isFork = pr.headRepo !== pr.baseRepo;
      if (isFork && !this.#inputs.allowForks) {
        return this.#refuse(
          `this pull request comes from ${pr.headRepo ? code(pr.headRepo, 80) : "a deleted fork"}; sweeps of fork PRs are off (the workflow can set \`allow-forks: true\`). Nothing was run.`,
        );
      }
    }
    await this.#react("eyes");
    if (command.kind === "help") {
      core.setOutput("comment-url", (await this.#reply(HELP_TEXT)) ?? "");
      return OK;
    }
    if (command.kind === "invalid") {
      return this.#refuse(
        `I could not read that command: ${code(command.reason, 300)}.\n\n${HELP_TEXT}`,
      );
    }

    if (pr) {
      try {
        const { moved, from } = await checkoutCommit(this.#cwd, pr.headSha);
        if (moved)
          core.info(
            `checked out the PR head ${pr.headSha} (the workspace was at ${from ?? "nothing"})`,
          );
      } catch (error) {
        if (error instanceof CheckoutError)
          return this.#refuse(`${error.message}. Nothing was run.`);
        throw error;
      }
      this.#headSha = pr.headSha;
    } else {
      this.#headSha = (await currentCommit(this.#cwd)) ?? (process.env.GITHUB_SHA || null);
    }

    const stagesDir = path.resolve(this.#cwd, this.#inputs.stagesDir);
    if (command.kind === "list") {
      core.setOutput(
        "comment-url",
        (await this.#reply(
          stageListMarkdown(await listStages(stagesDir), this.#inputs.stagesDir),
        )) ?? "",
      );
      return OK;
    }
    const file = await stageFile(stagesDir, command.stage);
    if (!file) {
      return this.#refuse(
        `there is no stage ${code(command.stage, 80)}: a stage is a file \`${this.#inputs.stagesDir}/<name>.yaml\` (name of letters, digits, \`_\` and \`-\`) at commit \`${(this.#headSha ?? "").slice(0, 7)}\`.\n\n${stageListMarkdown(await listStages(stagesDir), this.#inputs.stagesDir)}`,
      );
    }
    return this.#sweep(command, file);
  }

  async #prepare(
    command: Extract<SweepCommand, { kind: "run" }>,
    file: string,
  ): Promise<{ stage: StageConfig; baseConfig: Record<string, unknown> }> {
    const relative = path.relative(this.#cwd, file);
    const stage = applyStageOverrides(await loadStageConfig(relative), command.overrides, relative);
    const baseConfig = await loadBaseConfig(stage, {
      projectRoot: this.#cwd,
      file: this.#inputs.baseConfig,
    });
    return { stage, baseConfig };
  }

  async #storage(): Promise<CloudStorage | string> {
    const { storage } = this.#inputs;
    return storage.startsWith("s3://")
      ? createS3Storage(storage)
      : path.resolve(this.#cwd, storage);
  }

  /** What this job does with a run command: the whole stage, one shard of it, or the report of every shard. */
  get #mode(): Mode {
    if (this.#inputs.aggregate) return { kind: "aggregate" };
    if (this.#inputs.shard) return { kind: "shard", shard: this.#inputs.shard };
    return { kind: "run" };
  }

  /**
   * The caps and retries the sweep runs under: the tighter of the workflow's input and the
   * stage's field (after `/sweep` overrides), so a comment can lower the workflow's cap but
   * never raise it.
   */
  #limits(stage: StageConfig): Pick<RunStageOptions, "maxCostUsd" | "maxGpuHours" | "maxRetries"> {
    const tighter = (input: number | undefined, own: number | undefined): number | undefined =>
      input === undefined ? own : own === undefined ? input : Math.min(input, own);
    const maxCostUsd = tighter(this.#inputs.maxCostUsd, stage.maxCostUsd);
    const maxGpuHours = tighter(this.#inputs.maxGpuHours, stage.maxGpuHours);
    const maxRetries = tighter(this.#inputs.maxRetries, stage.maxRetries);
    return {
      ...(maxCostUsd === undefined ? {} : { maxCostUsd }),
      ...(maxGpuHours === undefined ? {} : { maxGpuHours }),
      ...(maxRetries === undefined ? {} : { maxRetries }),
    };
  }

  async #sweep(command: Extract<SweepCommand, { kind: "run" }>, file: string): Promise<Outcome> {
    // a dry run has its own sticky comment, so it never hides the stage's last report
    const marker = command.isDryRun ? dryRunMarker(command.stage) : stickyMarker(command.stage);
    const prNumber = this.#prNumber;
    const interval = this.#inputs.progressIntervalSeconds * 1000;
    const sticky =
      prNumber === null ? null : new StickyComment(this.#api, prNumber, marker, interval);
    this.#sticky = sticky;
    if (sticky)
      sticky.onError = (error) =>
        core.warning(`[action] a progress update of the comment failed: ${errorMessage(error)}`);
    const sha = this.#headSha ?? "";

    let prepared;
    try {
      prepared = await this.#prepare(command, file);
    } catch (error) {
      const message = errorMessage(error);
      const body = stageErrorMarkdown(command.stage, marker, message, this.#runUrl);
      if (sticky) core.setOutput("comment-url", (await sticky.finish(body)).htmlUrl);
      else await core.summary.addRaw(body).write();
      await this.#react("confused");
      return { isOk: false, message };
    }
    const { stage, baseConfig } = prepared;
    if (this.#inputs.gate && !command.isDryRun) {
      // a later job (on a GPU runner) runs it; this one has checked everything it can
      this.shouldRun = true;
      if (sticky) {
        const ref = await sticky.write(
          queuedMarkdown(command.stage, stickyMarker(command.stage), sha, this.#runUrl),
        );
        core.setOutput("comment-url", ref.htmlUrl);
      }
      return OK;
    }
    const mode = this.#mode;
    const shard = mode.kind === "shard" ? mode.shard : undefined;
    const limits = this.#limits(stage);
    const gpuType = this.#inputs.gpuType ?? stage.gpuType;
    const localRoot = path.join(
      process.env.RUNNER_TEMP || path.join(this.#cwd, ".tmgg"),
      "tmgg-sweep",
    );
    const sandboxIds = new Set<string>();
    if (this.#inputs.modalTokenId) process.env.MODAL_TOKEN_ID = this.#inputs.modalTokenId;
    if (this.#inputs.modalTokenSecret)
      process.env.MODAL_TOKEN_SECRET = this.#inputs.modalTokenSecret;

    const coordinatorFor = (
      backend: RecordingRunner | string,
      storage: CloudStorage | string,
    ): ExperimentCoordinator =>
      new ExperimentCoordinator({
        backend,
        storage,
        cacheDir: path.join(localRoot, "cache"),
        projectRoot: this.#cwd,
        commitSha: sha || null,
      });

    if (command.isDryRun) {
      const coordinator = coordinatorFor(this.#inputs.backend, await this.#storage());
      try {
        const plan = await coordinator.planStage(stage, baseConfig, {
          resume: !command.isFresh,
          shard,
        });
        const toRun = plan.total - plan.skip.size;
        const body = dryRunMarkdown(
          {
            stage,
            total: plan.total,
            toRun,
            skipped: plan.skip.size,
            groups: new Set(plan.runs.map((r) => r.groupId)).size,
            runIds: plan.runs.map((r) => r.runId),
            skippedIds: plan.skip,
            backend: this.#inputs.backend,
            budget: estimateStageBudget(stage, toRun, plan.stored.values(), {
              backend: this.#inputs.backend,
              gpuType,
              maxCostUsd: limits.maxCostUsd,
              maxGpuHours: limits.maxGpuHours,
              shard,
            }),
            shard,
            overrides: command.overrides,
            isFresh: command.isFresh,
            commitSha: sha,
            runUrl: this.#runUrl,
          },
          marker,
        );
        if (sticky) core.setOutput("comment-url", (await sticky.finish(body)).htmlUrl);
        await core.summary.addRaw(body).write();
        return OK;
      } finally {
        await coordinator.close();
      }
    }

    this.#statusContext = `tmgg-sweep/${command.stage}`;
    if (mode.kind === "aggregate") {
      const coordinator = coordinatorFor(this.#inputs.backend, await this.#storage());
      let result: StageResult;
      try {
        result = await coordinator.aggregateStoredStage(stage, baseConfig);
      } finally {
        await coordinator.close();
      }
      core.info(
        `stage ${stage.name}: joined ${result.summary.totalExperiments} stored runs, ${result.missingRuns?.length ?? 0} of the plan without a result`,
      );
      return this.#report(command, stage, result, new Map(), mode);
    }

    const runner = new RecordingRunner(
      await CloudRunnerFactory.create(
        this.#inputs.backend,
        this.#inputs.backend === "local"
          ? { outputDir: path.join(localRoot, "outputs"), killGraceMs: LOCAL_KILL_GRACE_MS }
          : {
              cacheDir: path.join(localRoot, "cache"),
              onSandbox: ({ sandboxId }: { sandboxId: string }) => {
                sandboxIds.add(sandboxId);
                core.saveState(STATE.sandboxes, JSON.stringify([...sandboxIds]));
              },
            },
      ),
    );
    const coordinator = coordinatorFor(runner, await this.#storage());
    // A shard job edits only its own line of the comment; the aggregate job writes the report.
    const shardComment =
      shard && prNumber !== null
        ? new ShardProgressComment(
            this.#api,
            prNumber,
            {
              marker: stickyMarker(command.stage),
              stage: command.stage,
              runKey: process.env.GITHUB_RUN_ID ?? "",
              commitSha: sha,
              runUrl: this.#runUrl,
            },
            shard,
            interval,
          )
        : null;
    this.#shardComment = shardComment;
    if (shardComment)
      shardComment.onError = (error) =>
        core.warning(
          `[action] a progress update of the shard's line failed: ${errorMessage(error)}`,
        );
    const progress = {
      total: 0,
      completed: 0,
      failed: 0,
      running: 0,
      skipped: 0,
      claimed: 0,
      notStarted: 0,
    };
    const recent: ExperimentResult[] = [];
    const progressBody = (): string =>
      renderProgressMarkdown({
        stage: stage.name,
        ...progress,
        commitSha: sha,
        marker,
        recent,
        ...(this.#runUrl ? { runUrl: this.#runUrl } : {}),
      });
    const progressLine = (): string =>
      shardLine({ shard: shard ?? { index: 1, count: 1 }, state: "running", ...progress });
    const onEvent = (event: CoordinatorEvent): void => {
      switch (event.type) {
        case "planned":
          progress.total = event.total;
          progress.skipped = event.skipped;
          core.info(
            `stage ${stage.name}${shard ? `, shard ${shard.index} of ${shard.count}` : ""}: ${event.total} runs, ${event.toRun} to run, ${event.skipped} already completed`,
          );
          break;
        case "started":
          progress.running++;
          break;
        case "finished":
          progress.running = event.counts.running;
          progress.completed = event.counts.completed - progress.skipped;
          progress.failed = event.counts.failed;
          recent.push(event.result);
          if (recent.length > 10) recent.shift();
          core.info(
            `${event.counts.done}/${event.counts.total} ${event.result.status} ${event.result.runId}`,
          );
          break;
        case "claimed":
          progress.claimed++;
          core.info(
            event.reason === "lease"
              ? `${event.runId}: claimed by another sweep (${event.owner ?? "?"}, until ${event.expiresAt ?? "?"}); not run here`
              : `${event.runId}: another sweep finished it meanwhile; not run here`,
          );
          break;
        case "skipped":
          progress.skipped++;
          core.info(`${event.runId}: another sweep completed it meanwhile; reused`);
          break;
        case "retry":
          core.info(
            `${event.runId}: failed for an infrastructure reason, running it again (attempt ${event.attempt}, at most ${event.maxRetries} retries)`,
          );
          return;
        case "budget":
          core.warning(event.message);
          return;
        case "warning":
          core.warning(event.message);
          return;
        default:
          return;
      }
      if (shardComment) {
        if (event.type === "planned") {
          shardComment.write(progressLine()).then((ref) => {
            if (ref) core.setOutput("comment-url", ref.htmlUrl);
            else
              core.info(
                "no sweep comment on the pull request to add this shard's line to (a gate job in front writes one); the aggregate job posts the report",
              );
          }, shardComment.onError);
        } else {
          shardComment.update(progressLine());
        }
        return;
      }
      if (shard) return; // a shard without a pull request: the job log only
      if (event.type === "planned" && sticky) {
        // the plan goes out at once; progress after it is throttled
        sticky.write(progressBody()).then((ref) => {
          core.saveState(STATE.commentId, String(ref.id));
          core.setOutput("comment-url", ref.htmlUrl);
        }, sticky.onError);
        return;
      }
      sticky?.update(progressBody());
    };

    await this.#status(
      "pending",
      shard
        ? `sweep ${stage.name} running in ${shard.count} shards (shard ${shard.index} started)`
        : `sweep ${stage.name} running`,
    );
    let result: StageResult;
    try {
      result = await coordinator.runStage(stage, baseConfig, {
        parallelism: this.#inputs.parallelism,
        resume: !command.isFresh,
        signal: this.#signal,
        onEvent,
        gpuType,
        ...limits,
        ...(shard ? { shard } : {}),
        ...(this.#inputs.leaseSeconds === undefined
          ? {}
          : { leaseSeconds: this.#inputs.leaseSeconds }),
      });
    } finally {
      sticky?.close();
      shardComment?.close();
      await coordinator.close();
      if (this.#inputs.backend === "modal") {
        const inner = runner.inner as { sandboxIds?: () => string[] };
        core.saveState(STATE.sandboxes, JSON.stringify(inner.sandboxIds?.() ?? []));
      }
    }
    return this.#report(command, stage, result, runner.localFolders, mode);
  }

  async #report(
    command: Extract<SweepCommand, { kind: "run" }>,
    stage: StageConfig,
    result: StageResult,
    localFolders: ReadonlyMap<string, string>,
    mode: Mode,
  ): Promise<Outcome> {
    const isCancelled = this.#signal.aborted;
    const { summary } = result;
    const shard = mode.kind === "shard" ? mode.shard : undefined;
    const notStarted = result.budget?.notStarted ?? 0;
    const keptByBudget = new Set(result.budget?.notStartedRuns ?? []);
    // runs of the plan with no result that the budget did not keep back: a shard that failed or never ran
    const missing = (result.missingRuns ?? []).filter((runId) => !keptByBudget.has(runId)).length;
    const claimed = result.claimedRuns?.length ?? 0;
    const hasFailures = summary.completed !== summary.totalExperiments;
    const isClean = !hasFailures && missing === 0;
    const cost = result.estimatedCostUsd ?? estimateRunsCostUsd(result.experiments) ?? undefined;
    const notes: string[] = [];
    if (isCancelled)
      notes.push(
        "⏹️ Cancelled: the runs in flight were stopped; completed runs are saved and skipped next time.",
      );
    if (shard)
      notes.push(
        `This job ran shard ${shard.index} of ${shard.count}; the aggregate job joins the shards and posts the report of the whole stage.`,
      );
    if (mode.kind === "aggregate")
      notes.push(
        `Joined from every stored run of the stage in ${this.#inputs.storage} (the shard jobs' results).`,
      );
    if (command.overrides.length > 0) notes.push(`Overrides: ${command.overrides.join(" ")}`);
    if (command.isFresh && mode.kind !== "aggregate")
      notes.push("--fresh: stored results were ignored");
    const options = {
      marker: stickyMarker(command.stage),
      notes,
      ...(this.#runUrl ? { runUrl: this.#runUrl } : {}),
      ...(cost === undefined ? {} : { estimatedCostUsd: cost }),
    };

    const part = shard ? `-shard-${shard.index}-of-${shard.count}` : "";
    const artifactRoot = path.join(
      process.env.RUNNER_TEMP || path.join(this.#cwd, ".tmgg"),
      "tmgg-sweep",
      `artifact-${command.stage}${part}`,
    );
    let staged: StagedArtifact | null = null;
    try {
      staged = await stageArtifact(
        artifactRoot,
        result,
        renderMarkdown(result, { ...options, maxChars: FULL_REPORT_MAX_CHARS }),
        localFolders,
      );
      for (const note of staged.notes) notes.push(`Artifact: ${note}`);
    } catch (error) {
      core.warning(
        `[action] could not prepare the artifact in ${artifactRoot}: ${errorMessage(error)}`,
      );
    }

    if (shard) {
      if (this.#shardComment) {
        const line = shardLine({
          shard,
          state: isCancelled ? "cancelled" : "finished",
          total: summary.totalExperiments + claimed + notStarted,
          completed: summary.completed - summary.skipped,
          failed: summary.failed + summary.timeout,
          running: 0,
          skipped: summary.skipped,
          claimed,
          notStarted,
        });
        try {
          const ref = await this.#shardComment.finish(line);
          if (ref) core.setOutput("comment-url", ref.htmlUrl);
        } catch (error) {
          core.warning(`[action] could not write the shard's line: ${errorMessage(error)}`);
        }
      }
    } else if (this.#sticky) {
      const ref = await this.#sticky.finish(renderMarkdown(result, options));
      core.setOutput("comment-url", ref.htmlUrl);
    }
    core.saveState(STATE.phase, "reported");
    if (mode.kind === "aggregate" && notStarted > 0)
      core.warning(
        `[action] sweep ${stage.name}: the budget kept ${notStarted} runs from starting (see the report)`,
      );
    const best = result.bestMetrics?.[result.objective.metric];
    const extra = [
      ...(notStarted > 0 ? [`budget reached: ${notStarted} not started`] : []),
      ...(missing > 0 ? [`${missing} without a result`] : []),
    ];
    const headline = `${summary.completed}/${summary.totalExperiments} completed${best === undefined ? "" : `, best ${result.objective.metric} ${best.toPrecision(4)}`}${extra.length > 0 ? `; ${extra.join("; ")}` : ""}`;
    const state: CommitState = isCancelled ? "error" : isClean ? "success" : "failure";
    const upload = async (): Promise<void> => {
      if (!staged) return;
      const name = `tmgg-sweep-${command.stage}${part}${Number(process.env.GITHUB_RUN_ATTEMPT ?? "1") > 1 ? `-attempt-${process.env.GITHUB_RUN_ATTEMPT}` : ""}`;
      try {
        const outcome = await uploadArtifact(name, staged);
        if (outcome.isUploaded)
          core.info(
            `uploaded the artifact ${name} (${outcome.sizeBytes ?? "?"} bytes, id ${outcome.id ?? "?"})`,
          );
        else core.warning(`[action] the artifact was not uploaded: ${outcome.reason}`);
      } catch (error) {
        core.warning(`[action] uploading the artifact ${name} failed: ${errorMessage(error)}`);
      }
    };

    // Cancelled: the runner kills this step about 10 s after its SIGINT, so the comment, the
    // status and the reaction go first and the upload last.
    if (!isCancelled) await upload();
    await core.summary
      .addRaw(renderMarkdown(result, { ...options, maxChars: SUMMARY_MAX_CHARS }))
      .write();
    core.setOutput("stage-result", staged?.stageResultPath ?? "");
    core.setOutput("best-config", JSON.stringify(result.bestConfig));
    core.setOutput("success-rate", String(summary.successRate));
    if (!shard) {
      // a shard's outcome is one part: the aggregate job sets the status and the reaction
      await this.#status(state, isCancelled ? `cancelled: ${headline}` : headline);
      await this.#react(isClean && notStarted === 0 && !isCancelled ? "rocket" : "confused");
    }
    if (isCancelled) await upload();

    const what = `sweep ${stage.name}${shard ? ` (shard ${shard.index} of ${shard.count})` : ""}`;
    if (isCancelled) return { isOk: false, message: `[action] ${what} cancelled: ${headline}` };
    const problems: string[] = [];
    if (hasFailures)
      problems.push(
        `${summary.totalExperiments - summary.completed} of ${summary.totalExperiments} runs did not complete`,
      );
    if (missing > 0)
      problems.push(
        `${missing} runs of the stage have no result (a shard job failed or did not run: re-run it, then this job)`,
      );
    if (problems.length > 0)
      return { isOk: false, message: `[action] ${what}: ${problems.join("; ")} (see the report)` };
    return OK;
  }

  /** After an unexpected error: says so where the user is looking, as far as that still works. */
  async reportCrash(error: unknown): Promise<void> {
    const message = errorMessage(error);
    try {
      if (this.#sticky) {
        this.#sticky.close();
        const stage = this.#trigger.command.kind === "run" ? this.#trigger.command.stage : "";
        await this.#sticky.write(
          stageErrorMarkdown(stage, stickyMarker(stage), message, this.#runUrl),
        );
      } else if (this.#trigger.kind === "comment") {
        await this.#api.createComment(
          this.#trigger.prNumber,
          refusalBody(`the sweep failed: ${code(message, 1_000)}`, this.#trigger.actor),
        );
      }
    } catch (inner) {
      core.warning(
        `[action] could not report the failure in the pull request: ${errorMessage(inner)}`,
      );
    }
    await this.#status("error", `failed: ${message}`);
    await this.#react("confused");
  }
}

/** The action's entry: handles the event; every error ends here as core.setFailed. */
export async function run(): Promise<void> {
  const signals = watchSignals();
  let session: Session | undefined;
  try {
    const inputs = readInputs();
    const trigger = readTrigger(context, inputs);
    if (trigger.kind === "ignore") {
      if (inputs.gate) core.setOutput("run", "false");
      core.info(`tmgg-sweep: nothing to do: ${trigger.reason}`);
      return;
    }
    // paths in stage files and errors are relative to the workspace, as on a terminal
    if (process.cwd() !== workspace()) process.chdir(workspace());
    const api = new GitHubApi(inputs.githubToken, context.repo.owner, context.repo.repo);
    session = new Session(api, inputs, trigger, signals.signal);
    const outcome = await session.handle();
    if (inputs.gate) core.setOutput("run", String(session.shouldRun));
    if (!outcome.isOk) core.setFailed(outcome.message);
  } catch (error) {
    if (!(error instanceof InputError)) await session?.reportCrash(error);
    core.setFailed(errorMessage(error));
  } finally {
    signals.dispose();
  }
}
