/**
 * The action's own comment bodies: help, the stage list, refusals and the dry-run plan.
 * Reports themselves come from core (renderMarkdown, renderProgressMarkdown). Text that
 * came from a comment or a file is shown through {@link code}, never as markdown.
 */
import { formatDuration, type Shard, type StageBudget, type StageConfig } from "@tmgg/core";

/** Hidden marker of the sticky comment of a (PR, stage): `<!-- tmgg-sweep:stage1 -->`. */
export function stickyMarker(stage: string): string {
  return `tmgg-sweep:${stage}`;
}

/** Hidden marker of the sticky dry-run plan of a (PR, stage). */
export function dryRunMarker(stage: string): string {
  return `tmgg-sweep:${stage}:dry-run`;
}

/** The marker as it appears in a comment body. */
export function markerComment(marker: string): string {
  return `<!-- ${marker} -->`;
}

/* eslint-disable no-control-regex -- these patterns exist to remove control characters */
const ANSI_ESCAPE = /\u001b\[[0-9;?]*[A-Za-z]/g;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f\u2028\u2029]+/g;
/* eslint-enable no-control-regex */

/** Untrusted text as inline code on one line: control characters gone, cut to `max`, HTML-escaped when it holds backticks. */
export function code(text: string, max = 100): string {
  let line = text.replace(ANSI_ESCAPE, "").replace(CONTROL_CHARACTERS, " ").trim();
  if (line.length > max) line = `${line.slice(0, max - 1)}…`;
  if (line === "") return '""';
  if (!line.includes("`")) return `\`${line}\``;
  const escaped = line
    .replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
    .replace(/[\\`*_{}[\]()#+\-.!|~]/g, "\\$&");
  return `<code>${escaped}</code>`;
}

export const HELP_TEXT = `### 🧪 \`/sweep\` — run a sweep stage on this pull request

| command | what it does |
| --- | --- |
| \`/sweep <stage>\` | runs \`stages/<stage>.yaml\` on the PR's head commit and answers here (progress, then the report) |
| \`/sweep <stage> key=value …\` | overrides for this run: \`seeds=1,2\`, \`timeout_seconds=600\`, \`gpu_type=T4\`, \`num_trials=10\`, \`architectures=…\`, \`datasets=…\`, \`max_cost_usd=20\`, \`max_gpu_hours=8\`, \`max_retries=2\`, or a hyperparameter of the stage (\`learning_rate=1e-3\`, \`model.num_layers=4,8\`) |
| \`/sweep <stage> --dry-run\` | shows the plan (runs, resume, estimated GPU cost against the budget) and runs nothing |
| \`/sweep <stage> --fresh\` | ignores stored results and runs everything again |
| \`/sweep list\` | lists the stages in this repository |
| \`/sweep help\` | this text |

Only the first line of a comment is read. Results are kept in storage, so a second \`/sweep <stage>\` skips the runs that already completed.`;

/** A short answer that runs nothing: a refusal or a bad command. */
export function refusalBody(text: string, user: string | undefined): string {
  const mention = user ? `@${user} ` : "";
  return `🙅 ${mention}${text}`;
}

/** One line per stage: what `/sweep list` answers and what an unknown stage is told. */
export interface StageListing {
  name: string;
  runs?: number;
  gpuType?: string;
  description?: string;
  error?: string;
}

export function stageListMarkdown(stages: readonly StageListing[], stagesDir: string): string {
  if (stages.length === 0)
    return `No stages: \`${stagesDir}/\` holds no \`<name>.yaml\` files at this commit.`;
  const rows = stages.map((stage) =>
    stage.error === undefined
      ? `| ${code(stage.name, 60)} | ${stage.runs ?? "?"} | ${code(stage.gpuType ?? "", 30)} | ${stage.description ? code(stage.description, 120) : ""} |`
      : `| ${code(stage.name, 60)} | — | — | ⚠️ ${code(stage.error, 200)} |`,
  );
  return [
    `Stages in ${code(`${stagesDir}/`, 60)} (run one with \`/sweep <name>\`):`,
    "",
    "| stage | runs | gpu | description |",
    "| --- | ---: | --- | --- |",
    ...rows,
  ].join("\n");
}

/** What a dry run shows. */
export interface DryRunPlan {
  stage: StageConfig;
  total: number;
  toRun: number;
  skipped: number;
  groups: number;
  runIds: readonly string[];
  skippedIds: ReadonlySet<string>;
  backend: string;
  /** The runs to run priced against the caps (core's estimateStageBudget, as `tmgg plan`). */
  budget: StageBudget;
  /** The shard planned, when the job runs one. */
  shard: Shard | undefined;
  overrides: readonly string[];
  isFresh: boolean;
  commitSha: string;
  runUrl: string | undefined;
}

const PLAN_IDS_SHOWN = 50;

function usd(value: number): string {
  return value < 0.01 && value > 0 ? "< $0.01" : `$${value.toFixed(2)}`;
}

function hours(value: number): string {
  if (value >= 10) return value.toFixed(1);
  return value >= 0.01 || value === 0 ? value.toFixed(2) : value.toPrecision(2);
}

/**
 * Cost lines of a plan: an upper bound (every run reaching its timeout), where stored runs
 * say how long a run takes a typical figure, and the budget (`max_cost_usd`,
 * `max_gpu_hours`) the sweep would run under.
 */
export function costLines(plan: DryRunPlan): string[] {
  const { estimate, model, limits, storedRuns } = plan.budget;
  const gpu = code(model.gpuType, 40);
  const shape = `${plan.toRun} runs × timeout ${formatDuration(model.timeoutSeconds)} × ${model.gpus} GPU`;
  const gpuHours = `${hours(estimate.worstCase.gpuHours)} GPU-hours`;
  const lines: string[] = [];
  if (model.backend === "local") {
    lines.push(
      `**Estimated GPU cost:** none billed by a cloud: the \`local\` backend runs on this job's own runner; at most ${gpuHours} (${shape})`,
    );
  } else if (estimate.worstCase.costUsd === null) {
    lines.push(
      `**Estimated GPU cost:** unknown: no price for GPU type ${gpu}; at most ${gpuHours}`,
    );
  } else {
    lines.push(
      `**Estimated GPU cost:** at most ${usd(estimate.worstCase.costUsd)}, ${gpuHours} (${shape} on ${gpu}, Modal list prices; an estimate, not a bill)`,
    );
    if (estimate.expected?.costUsd != null && estimate.meanDurationSeconds !== null) {
      lines.push(
        `**Typical:** about ${usd(estimate.expected.costUsd)} (${storedRuns} stored runs of this stage took ${formatDuration(estimate.meanDurationSeconds)} on average)`,
      );
    }
  }
  const caps: string[] = [];
  if (limits.maxCostUsd !== undefined) caps.push(`max_cost_usd ${usd(limits.maxCostUsd)}`);
  if (limits.maxGpuHours !== undefined) caps.push(`max_gpu_hours ${hours(limits.maxGpuHours)}`);
  if (caps.length === 0) {
    lines.push(
      "**Budget:** none (set `max_cost_usd` or `max_gpu_hours` in the stage, as a `/sweep` override, or in the workflow's inputs)",
    );
  } else {
    const share = plan.shard ? ` (this shard's 1/${plan.shard.count} share)` : "";
    lines.push(
      estimate.mayStopEarly
        ? `**Budget:** ${caps.join(", ")}${share}: ⚠️ the worst case passes it, so a run starts only while the runs started could not pass it at their timeout (${estimate.runsAtOnce ?? 0} runs at once at most); the rest are reported as not started`
        : `**Budget:** ${caps.join(", ")}${share}: ✅ every run fits even at its timeout`,
    );
  }
  return lines;
}

export function dryRunMarkdown(plan: DryRunPlan, marker: string): string {
  const { stage } = plan;
  const hyper = Object.entries(stage.hyperparameterSpace).map(([key, values]) =>
    Array.isArray(values)
      ? `${code(key, 60)}: ${values.length} values`
      : `${code(key, 60)}: a range`,
  );
  const shown = plan.runIds.slice(0, PLAN_IDS_SHOWN);
  const pairs = stage.architectures.length * stage.datasets.length;
  const shape = plan.shard
    ? `shard ${plan.shard.index} of ${plan.shard.count}`
    : stage.numTrials === undefined
      ? `${plan.groups} configurations × ${stage.seeds.length} seeds`
      : `${stage.numTrials} trials × ${stage.seeds.length} seeds × ${pairs} architecture-dataset pairs`;
  const facts = [
    `**Runs:** ${plan.total} (${shape}) · **to run:** ${plan.toRun} · **skipped (already completed):** ${plan.skipped}${plan.isFresh ? " · `--fresh`: stored results ignored" : ""}`,
    `**Backend:** ${code(plan.backend, 30)} on ${code(plan.budget.model.gpuType, 40)} · **timeout:** ${formatDuration(plan.budget.model.timeoutSeconds)} per run · **commit:** \`${plan.commitSha.slice(0, 7)}\``,
    `**Command:** ${code(stage.command.join(" "), 200)}`,
    ...(hyper.length > 0 ? [`**Hyperparameters:** ${hyper.join(", ")}`] : []),
    ...(plan.overrides.length > 0
      ? [`**Overrides:** ${plan.overrides.map((o) => code(o, 80)).join(" ")}`]
      : []),
    ...costLines(plan),
  ];
  const list = [
    "<details><summary>Runs</summary>",
    "",
    ...shown.map((id) => `- ${plan.skippedIds.has(id) ? "⏭️ skip" : "▶️ run"} ${code(id, 160)}`),
    ...(plan.runIds.length > shown.length ? [`- … ${plan.runIds.length - shown.length} more`] : []),
    "",
    "</details>",
  ];
  return [
    markerComment(marker),
    `## 📋 Sweep ${code(stage.name, 60)}: dry run — nothing was run`,
    "",
    facts.join("  \n"),
    "",
    ...list,
    "",
    `Run it with ${code(["/sweep", stage.name, ...plan.overrides, ...(plan.isFresh ? ["--fresh"] : [])].join(" "), 300)}.${plan.runUrl ? ` [Workflow run](${plan.runUrl})` : ""}`,
  ].join("\n");
}

/** The sticky comment when the stage cannot start (a bad stage file, a bad override). */
export function stageErrorMarkdown(
  stage: string,
  marker: string,
  message: string,
  runUrl: string | undefined,
): string {
  const fence = "`".repeat(
    Math.max(3, ...(message.match(/`+/g) ?? []).map((run) => run.length + 1)),
  );
  return [
    markerComment(marker),
    `## ❌ Sweep ${code(stage, 60)} did not start`,
    "",
    `${fence}text\n${message.slice(0, 4_000)}\n${fence}`,
    ...(runUrl ? ["", `[Workflow run](${runUrl})`] : []),
  ].join("\n");
}

/** The sticky comment a gate job leaves for the job that will run the sweep. */
export function queuedMarkdown(
  stage: string,
  marker: string,
  commitSha: string,
  runUrl: string | undefined,
): string {
  return [
    markerComment(marker),
    `## ⏳ Sweep ${code(stage, 60)} is queued`,
    "",
    `Checked and waiting for a runner; this comment shows the progress once it starts. Commit \`${commitSha.slice(0, 7)}\`.${runUrl ? ` [Workflow run](${runUrl})` : ""}`,
  ].join("\n");
}
