/**
 * The action's own comment bodies: help, the stage list, refusals and the dry-run plan.
 * Reports themselves come from core (renderMarkdown, renderProgressMarkdown). Text that
 * came from a comment or a file is shown through {@link code}, never as markdown.
 */
import { estimateCostUsd, formatDuration, type StageConfig } from "@tmgg/core";

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
| \`/sweep <stage> key=value …\` | overrides for this run: \`seeds=1,2\`, \`timeout_seconds=600\`, \`gpu_type=T4\`, \`num_trials=10\`, \`architectures=…\`, \`datasets=…\`, or a hyperparameter of the stage (\`learning_rate=1e-3\`, \`model.num_layers=4,8\`) |
| \`/sweep <stage> --dry-run\` | shows the plan (runs, resume, estimated GPU cost) and runs nothing |
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
  gpuType: string;
  timeoutSeconds: number;
  /** Mean duration of the stage's stored completed runs, when there are some. */
  typicalSeconds: number | undefined;
  overrides: readonly string[];
  isFresh: boolean;
  commitSha: string;
  runUrl: string | undefined;
}

const PLAN_IDS_SHOWN = 50;

function usd(value: number): string {
  return value < 0.01 && value > 0 ? "< $0.01" : `$${value.toFixed(2)}`;
}

/** Cost lines of a plan: an upper bound (every run reaching its timeout) and, where stored runs say how long a run takes, a typical figure. */
export function costLines(plan: DryRunPlan): string[] {
  if (plan.backend !== "modal") {
    return [
      `**Estimated GPU cost:** none billed by a cloud: the \`${plan.backend}\` backend runs on this job's own runner.`,
    ];
  }
  const bound = estimateCostUsd(plan.gpuType, plan.timeoutSeconds * plan.toRun);
  if (bound === null)
    return [`**Estimated GPU cost:** unknown: no price for GPU type ${code(plan.gpuType, 40)}.`];
  const lines = [
    `**Estimated GPU cost:** at most ${usd(bound)} (${plan.toRun} runs × timeout ${formatDuration(plan.timeoutSeconds)} on ${code(plan.gpuType, 40)}, Modal list prices; an estimate, not a bill)`,
  ];
  if (plan.typicalSeconds !== undefined) {
    const typical = estimateCostUsd(plan.gpuType, plan.typicalSeconds * plan.toRun);
    if (typical !== null) {
      lines.push(
        `**Typical:** about ${usd(typical)} (stored runs of this stage took ${formatDuration(plan.typicalSeconds)} on average)`,
      );
    }
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
  const facts = [
    `**Runs:** ${plan.total} (${plan.groups} configurations × ${stage.seeds.length} seeds) · **to run:** ${plan.toRun} · **skipped (already completed):** ${plan.skipped}${plan.isFresh ? " · `--fresh`: stored results ignored" : ""}`,
    `**Backend:** ${code(plan.backend, 30)} on ${code(plan.gpuType, 40)} · **timeout:** ${formatDuration(plan.timeoutSeconds)} per run · **commit:** \`${plan.commitSha.slice(0, 7)}\``,
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
