/**
 * Report rendering: a StageResult as GitHub markdown (the PR comment, the job summary) or
 * as plain text (the terminal), plus the live progress comment while a sweep runs.
 *
 * Everything that comes from users (config values, metric names, run ids, error messages)
 * is treated as untrusted text: control characters and ANSI escapes are stripped, markdown
 * and HTML are escaped, and stderr tails sit in fenced blocks longer than any backtick run
 * they contain. The markdown stays under `maxChars` however large the sweep: the groups
 * table, the failures and the chart are cut to fit, and each cut says what was left out.
 */
import type { ExperimentResult, Group, MetricStats, Objective, StageResult } from "./schemas.ts";

/** How a report is rendered. */
export interface ReportOptions {
  /** Most characters in the output; default 60,000 for markdown (a GitHub comment holds 65,536), unlimited for text. */
  maxChars?: number | undefined;
  /** Heading, as plain text (escaped); default ``Sweep `<stage>` ``. */
  title?: string | undefined;
  /** Link to the workflow run or wherever the artifacts are (http or https). */
  runUrl?: string | undefined;
  /** Hidden HTML comment put first in the markdown, so a sticky comment can be found again: `tmgg-sweep:stage1` or `<!-- tmgg-sweep:stage1 -->`. */
  marker?: string | undefined;
  /** Estimated GPU cost in US dollars, shown labelled "estimated"; default: the StageResult's own `estimatedCostUsd`. */
  estimatedCostUsd?: number | undefined;
  /** Extra lines shown under the title, as plain text (escaped): "cancelled by the user", "budget reached". */
  notes?: readonly string[] | undefined;
  /** Text only: the most groups listed, best first, the rest counted in one line; default all. */
  maxGroups?: number | undefined;
}

/** A sweep in flight, for {@link renderProgressMarkdown}. */
export interface SweepProgress {
  stage: string;
  /** Planned experiments. */
  total: number;
  completed: number;
  /** Failed or timed out. */
  failed: number;
  running: number;
  /** Skipped because a stored result already completed (resume). */
  skipped: number;
  commitSha?: string | null | undefined;
  runUrl?: string | undefined;
  marker?: string | undefined;
  /** Results that ended lately, oldest first; the newest 10 are shown. */
  recent?: readonly ExperimentResult[] | undefined;
}

/** Default `maxChars` of {@link renderMarkdown}: GitHub refuses comments over 65,536 characters. */
export const DEFAULT_MARKDOWN_MAX_CHARS = 60_000;
const MIN_MAX_CHARS = 1_000;
/** The chart is drawn for this many ranked groups (the table carries the same numbers). */
const CHART_MIN_GROUPS = 2;
const CHART_MAX_GROUPS = 30;
/** Failures shown with their stderr tail; the rest get one line each. */
const DETAILED_FAILURES = 10;
/** Tail sizes tried for the detailed failures, largest first (below the last, the table of errors says more). */
const TAIL_LEVELS = [
  { lines: 40, chars: 4_000 },
  { lines: 15, chars: 1_500 },
  { lines: 5, chars: 500 },
] as const;
const MAX_PARAM_COLUMNS = 16;
const MAX_METRIC_COLUMNS = 8;
const MAX_BEST_ROWS = 40;
const MAX_NOTES = 20;
const MAX_NOTE_CHARS = 500;
const MAX_CELL_CHARS = 60;
const MAX_HEADLINE_CHARS = 300;
const MAX_URL_CHARS = 2_000;
const MAX_MARKER_CHARS = 200;
const RECENT_SHOWN = 10;
/** What `judgeOutcome` puts between an error's headline and its stderr tail. */
const STDERR_SEPARATOR = "\n--- stderr (last lines) ---\n";

// ---------------------------------------------------------------------------------------
// Numbers and durations

/**
 * A number with 4 significant digits, in exponent form when tiny or huge.
 *
 * @example formatNumber(0.123456) // "0.1235"; formatNumber(1.5e-7) // "1.5e-7"; formatNumber(12345) // "12345"
 */
export function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs < 1e-3 || abs >= 1e6) {
    const [mantissa = "", exponent = "0"] = value.toExponential(3).split("e");
    return `${stripZeros(mantissa)}e${Number(exponent)}`;
  }
  const fixed = value.toPrecision(4);
  if (abs >= 1e4 || fixed.includes("e")) return Math.round(value).toString();
  return stripZeros(fixed);
}

function stripZeros(text: string): string {
  return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
}

/**
 * Seconds as a person reads them: `850 ms`, `4.2 s`, `42 s`, `4m 05s`, `2h 03m`, `3d 04h`.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "-";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 9.95) return `${seconds.toFixed(1)} s`;
  if (seconds < 59.5) return `${Math.round(seconds)} s`;
  const total = Math.round(seconds);
  const pad = (n: number): string => String(n).padStart(2, "0");
  const days = Math.floor(total / 86_400);
  const hours = Math.floor((total % 86_400) / 3_600);
  const minutes = Math.floor((total % 3_600) / 60);
  if (total < 3_600) return `${minutes}m ${pad(total % 60)}s`;
  if (total < 86_400) return `${hours}h ${pad(minutes)}m`;
  return `${days}d ${pad(hours)}h`;
}

function formatCount(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function formatUsd(usd: number): string {
  if (usd > 0 && usd < 0.01) return "< $0.01";
  return `$${usd.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

function formatPercent(fraction: number): string {
  if (!Number.isFinite(fraction)) return "-";
  const percent = fraction * 100;
  return `${percent === 100 || percent === 0 ? percent.toFixed(0) : percent.toFixed(1)} %`;
}

function formatStats(stats: MetricStats | undefined): string {
  if (!stats || stats.n === 0) return "-";
  return `${formatNumber(stats.mean)} ± ${formatNumber(stats.std)}`;
}

// ---------------------------------------------------------------------------------------
// Untrusted text

// CSI, OSC (ended by BEL or ST) and two-character escape sequences.
const ANSI_PATTERN =
  // eslint-disable-next-line no-control-regex
  /\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|[@-Z\\-_])/g;
// C0 controls but tab and newline, DEL, C1 controls, and bidi overrides ("trojan source").
// eslint-disable-next-line no-control-regex
const CONTROL_PATTERN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Terminal output as it would look: ANSI escapes gone, a carriage return keeps what was
 * written after it (progress bars), other control characters removed.
 */
function sanitize(text: string): string {
  const lines = text.replace(ANSI_PATTERN, "").replace(/\r\n/g, "\n").split("\n");
  return lines
    .map((line) => {
      if (!line.includes("\r")) return line;
      const parts = line.split("\r").filter((part) => part !== "");
      return parts.at(-1) ?? "";
    })
    .join("\n")
    .replace(CONTROL_PATTERN, "");
}

/** Cuts to at most `max` characters, ending in "…" when cut, never splitting a surrogate pair. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, Math.max(0, max - 1));
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** One line of user text: sanitized, whitespace runs collapsed, cut to `max`. */
function oneLine(text: string, max: number): string {
  // Sanitizing only a bounded prefix keeps 100 KB messages cheap.
  const head = text.length > max * 4 + 64 ? text.slice(0, max * 4 + 64) : text;
  return truncate(sanitize(head).replace(/\s+/g, " ").trim(), max);
}

/** A value from a config or params as text. */
function valueText(value: unknown): string {
  if (value === undefined) return "";
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "string") return value;
  if (typeof value === "bigint" || typeof value === "boolean" || value === null)
    return String(value);
  try {
    return JSON.stringify(value) ?? "";
  } catch {
    return "[unserializable]";
  }
}

/** Escapes text for inline markdown: no emphasis, links, code, HTML, math or table breaks. */
function escapeMarkdown(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/[\\`*_[\]|~$]/g, (c) => `\\${c}`);
}

/** Escapes plain text that may start a line (notes, titles): also neutralizes list and heading markers. */
function escapeMarkdownLine(text: string): string {
  return escapeMarkdown(text)
    .replace(/^([#+=-])/, "\\$1")
    .replace(/^(\d+)([.)])/, "$1\\$2");
}

const PLAIN_CODE = /^[A-Za-z0-9_.,/:=+-]+$/;

/**
 * User text as inline code, safe in a paragraph or a table cell: a backtick span when the
 * text is plain, else an escaped `<code>` element (which also keeps `@mentions` inert).
 */
function code(text: string, max = MAX_CELL_CHARS): string {
  const line = oneLine(text, max);
  if (line === "") return '""';
  if (PLAIN_CODE.test(line)) return `\`${line}\``;
  return `<code>${escapeMarkdown(line)}</code>`;
}

/** A fenced block that no line of `text` can close. */
function fenced(text: string, info: string): string {
  const longestRun = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = "`".repeat(Math.max(3, longestRun + 1));
  return `${fence}${info}\n${text}\n${fence}`;
}

/** The hidden comment for a marker, or an error when it could end the comment early. */
function markerComment(marker: string | undefined): string | null {
  if (marker === undefined) return null;
  const inner = /^<!--[\s\S]*-->$/.test(marker) ? marker.slice(4, -3).trim() : marker.trim();
  if (inner === "" || inner.length > MAX_MARKER_CHARS || /-->|--!>|[\r\n]|^>|^->/.test(inner)) {
    throw new RangeError(
      `[report] marker ${JSON.stringify(truncate(marker, 80))} cannot be a hidden HTML comment: ` +
        `use 1-${MAX_MARKER_CHARS} characters on one line without "-->", e.g. "tmgg-sweep:stage1"`,
    );
  }
  return `<!-- ${inner} -->`;
}

function checkUrl(url: string | undefined): string | null {
  if (url === undefined) return null;
  if (!/^https?:\/\/[^\s]+$/i.test(url) || url.length > MAX_URL_CHARS) {
    throw new RangeError(
      `[report] runUrl must be an http(s) URL without spaces, at most ${MAX_URL_CHARS} characters; ` +
        `got ${JSON.stringify(truncate(url, 80))}`,
    );
  }
  return url;
}

/** A URL as a markdown link destination: characters that could end it are percent-encoded. */
function linkDestination(url: string): string {
  return url.replace(
    /[()<>"'\\`[\]|]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`,
  );
}

function checkOptions(options: ReportOptions, defaultMax: number): number {
  const maxChars = options.maxChars ?? defaultMax;
  if (maxChars !== Infinity && (!Number.isInteger(maxChars) || maxChars < MIN_MAX_CHARS)) {
    throw new RangeError(
      `[report] maxChars must be an integer of at least ${MIN_MAX_CHARS}, got ${maxChars}`,
    );
  }
  const { maxGroups } = options;
  if (maxGroups !== undefined && (!Number.isInteger(maxGroups) || maxGroups < 1)) {
    throw new RangeError(`[report] maxGroups must be an integer of at least 1, got ${maxGroups}`);
  }
  const cost = options.estimatedCostUsd;
  if (cost !== undefined && (!Number.isFinite(cost) || cost < 0)) {
    throw new RangeError(
      `[report] estimatedCostUsd must be a finite number of dollars >= 0, got ${cost}`,
    );
  }
  return maxChars;
}

function shortSha(sha: string): string {
  return /^[0-9a-f]{7,64}$/i.test(sha) ? sha.slice(0, 7) : oneLine(sha, 40);
}

// ---------------------------------------------------------------------------------------
// The model both renderers share

type Outcome = "completed" | "failures" | "failed" | "cancelled";

interface RankedGroup {
  group: Group;
  /** 1-based rank among groups that have the objective; null when they do not. */
  rank: number | null;
  objective: MetricStats | undefined;
}

/** Failed runs that failed the same way: same status, headline and last stderr line. */
interface FailureKind {
  status: string;
  headline: string;
  lastLine: string;
  /** The first run is the one shown in detail. */
  runs: ExperimentResult[];
}

interface Model {
  result: StageResult;
  outcome: Outcome;
  objective: Objective;
  ranked: RankedGroup[];
  best: RankedGroup | null;
  paramKeys: string[];
  hiddenParamKeys: number;
  metricKeys: string[];
  hiddenMetricKeys: number;
  failures: ExperimentResult[];
  hasChart: boolean;
}

function outcomeOf(result: StageResult): Outcome {
  const { summary } = result;
  if (summary.cancelled > 0) return "cancelled";
  if (summary.failed + summary.timeout === 0) return "completed";
  return summary.completed > 0 ? "failures" : "failed";
}

function objectiveStats(group: Group, metric: string): MetricStats | undefined {
  const stats = group.metrics[metric];
  return stats && stats.n > 0 && Number.isFinite(stats.mean) ? stats : undefined;
}

/** Groups best first by the objective's mean over seeds, ties to the lower std; the StageResult's own best group leads. */
function rankGroups(result: StageResult): RankedGroup[] {
  const { metric, mode } = result.objective;
  const sign = mode === "max" ? -1 : 1;
  const std = (s: MetricStats): number => (Number.isFinite(s.std) ? s.std : Infinity);
  const entries = result.groups.map((group) => ({
    group,
    objective: objectiveStats(group, metric),
  }));
  const byId = (a: Group, b: Group): number =>
    a.groupId < b.groupId ? -1 : a.groupId > b.groupId ? 1 : 0;
  entries.sort((a, b) => {
    if (!a.objective || !b.objective) {
      if (a.objective) return -1;
      if (b.objective) return 1;
      return byId(a.group, b.group);
    }
    const isBestA = a.group.groupId === result.bestGroup;
    const isBestB = b.group.groupId === result.bestGroup;
    if (isBestA !== isBestB) return isBestA ? -1 : 1;
    const byMean = sign * (a.objective.mean - b.objective.mean);
    if (byMean !== 0) return byMean;
    const byStd = std(a.objective) - std(b.objective);
    if (byStd !== 0 && !Number.isNaN(byStd)) return byStd;
    return byId(a.group, b.group);
  });
  let rank = 0;
  return entries.map((entry) => ({ ...entry, rank: entry.objective ? ++rank : null }));
}

function unionKeys(
  records: Iterable<Record<string, unknown>>,
  skip: ReadonlySet<string>,
): string[] {
  const keys = new Set<string>();
  for (const record of records)
    for (const key of Object.keys(record)) if (!skip.has(key)) keys.add(key);
  return [...keys].sort();
}

function buildModel(result: StageResult): Model {
  const ranked = rankGroups(result);
  const metric = result.objective.metric;
  const paramKeys = unionKeys(
    result.groups.map((g) => g.params),
    new Set(["architecture", "dataset", "seed"]),
  );
  const metricKeys = unionKeys(
    result.groups.map((g) => g.metrics),
    new Set([metric]),
  );
  const rankedCount = ranked.filter((r) => r.rank !== null).length;
  const first = ranked[0];
  return {
    result,
    outcome: outcomeOf(result),
    objective: result.objective,
    ranked,
    best: first?.objective ? first : null,
    paramKeys: paramKeys.slice(0, MAX_PARAM_COLUMNS),
    hiddenParamKeys: Math.max(0, paramKeys.length - MAX_PARAM_COLUMNS),
    metricKeys: metricKeys.slice(0, MAX_METRIC_COLUMNS),
    hiddenMetricKeys: Math.max(0, metricKeys.length - MAX_METRIC_COLUMNS),
    failures: result.experiments.filter((e) => e.status === "failed" || e.status === "timeout"),
    hasChart: rankedCount >= CHART_MIN_GROUPS && rankedCount <= CHART_MAX_GROUPS,
  };
}

/** The first line of an error message (what went wrong), before any stderr tail. */
function headlineOf(experiment: ExperimentResult): string {
  const message = experiment.errorMessage ?? `${experiment.status} without an error message`;
  const head = message.slice(0, MAX_HEADLINE_CHARS * 4);
  const end = head.indexOf("\n");
  return oneLine(end === -1 ? head : head.slice(0, end), MAX_HEADLINE_CHARS);
}

/** Where an error message's stderr tail starts (after the separator, else after the first line); -1 without one. */
function tailStart(message: string): number {
  const separator = message.indexOf(STDERR_SEPARATOR);
  if (separator !== -1) return separator + STDERR_SEPARATOR.length;
  const newline = message.indexOf("\n");
  return newline === -1 ? -1 : newline + 1;
}

/** The last non-blank line of an error message's stderr tail: usually the exception. */
function lastLineOf(experiment: ExperimentResult): string {
  const message = experiment.errorMessage ?? "";
  const start = tailStart(message);
  if (start === -1) return "";
  const end = sanitize(message.slice(Math.max(start, message.length - 2_000))).trimEnd();
  return oneLine(end.slice(end.lastIndexOf("\n") + 1), 200);
}

/** Failures grouped by how they failed, the most common first. */
function failureKinds(failures: readonly ExperimentResult[]): FailureKind[] {
  const kinds = new Map<string, FailureKind>();
  for (const experiment of failures) {
    const headline = headlineOf(experiment);
    const lastLine = lastLineOf(experiment);
    const key = `${experiment.status}\n${headline}\n${lastLine}`;
    const kind = kinds.get(key);
    if (kind) kind.runs.push(experiment);
    else kinds.set(key, { status: experiment.status, headline, lastLine, runs: [experiment] });
  }
  return [...kinds.values()].sort((a, b) => b.runs.length - a.runs.length);
}

/** The last lines of an error message's stderr tail (or of its lines after the headline). */
function tailOf(
  experiment: ExperimentResult,
  maxLines: number,
  maxChars: number,
): { text: string; lines: number; isCut: boolean } {
  const message = experiment.errorMessage ?? "";
  if (maxLines === 0) return { text: "", lines: 0, isCut: false };
  let start = tailStart(message);
  if (start === -1) return { text: "", lines: 0, isCut: false };
  // Only the end can be shown: sanitize a bounded window of it.
  const window = Math.max(maxChars * 4, 4_096);
  const isWindowed = message.length - start > window;
  if (isWindowed) start = message.length - window;
  let lines = sanitize(message.slice(start)).replace(/\s+$/, "").split("\n");
  if (isWindowed) lines = lines.slice(1);
  let isCut = isWindowed || lines.length > maxLines;
  lines = lines.slice(-maxLines);
  let text = lines.join("\n");
  if (text.length > maxChars) {
    isCut = true;
    text = text.slice(-maxChars);
    if (/^[\uDC00-\uDFFF]/.test(text)) text = text.slice(1);
    const newline = text.indexOf("\n");
    if (newline !== -1 && newline < text.length - 1) text = text.slice(newline + 1);
  }
  return { text, lines: text === "" ? 0 : text.split("\n").length, isCut };
}

/** Runs of the stage this result holds no outcome for: "3 not run here, 2 without a result yet". */
function runsNotHere(result: StageResult): string {
  const parts: string[] = [];
  const elsewhere = (result.claimedRuns?.length ?? 0) + (result.budget?.notStarted ?? 0);
  if (elsewhere > 0) parts.push(`${formatCount(elsewhere)} not run here`);
  const missing = result.missingRuns?.length ?? 0;
  if (missing > 0) parts.push(`${formatCount(missing)} without a result yet`);
  return parts.join(", ");
}

function formatRunIds(runIds: readonly string[], shown = 5): string {
  const head = runIds.slice(0, shown).join(", ");
  return runIds.length > shown ? `${head} … (${formatCount(runIds.length - shown)} more)` : head;
}

function formatHours(hours: number): string {
  return hours >= 0.01 && hours < 10 ? hours.toFixed(2) : formatNumber(hours);
}

/**
 * Notes a StageResult carries itself: the shard it covers, runs left to other sweeps,
 * runs without a result, and the budget. Shown before the caller's notes.
 */
export function stageNotes(result: StageResult): string[] {
  const notes: string[] = [];
  if (result.shard) {
    notes.push(
      `shard ${result.shard.index} of ${result.shard.count}: this result covers that part of the stage; tmgg aggregate joins the shards`,
    );
  }
  const claimed = result.claimedRuns ?? [];
  if (claimed.length > 0) {
    notes.push(
      `${formatCount(claimed.length)} ${claimed.length === 1 ? "run was" : "runs were"} claimed by another sweep (not run here, not failed): ${formatRunIds(claimed)}`,
    );
  }
  const missing = result.missingRuns ?? [];
  if (missing.length > 0) {
    notes.push(
      `${formatCount(missing.length)} ${missing.length === 1 ? "run" : "runs"} of the plan have no result yet (not run, or still running): ${formatRunIds(missing)}`,
    );
  }
  const budget = result.budget;
  if (budget) {
    const parts: string[] = [];
    if (budget.limit.costUsd !== null)
      parts.push(
        `${budget.spent.costUsd === null ? "?" : formatUsd(budget.spent.costUsd)} of max_cost_usd ${formatUsd(budget.limit.costUsd)} (estimated)`,
      );
    if (budget.limit.gpuHours !== null)
      parts.push(
        `${formatHours(budget.spent.gpuHours ?? 0)} of max_gpu_hours ${formatHours(budget.limit.gpuHours)} GPU-hours`,
      );
    notes.push(
      budget.stoppedEarly
        ? `budget reached: ${formatCount(budget.notStarted)} ${budget.notStarted === 1 ? "run" : "runs"} not started; spent ${parts.join(", ")} (runs in flight counted at their timeout)`
        : `budget: spent ${parts.join(", ")}`,
    );
  }
  return notes;
}

function statusWord(outcome: Outcome, result: StageResult): string {
  const { summary } = result;
  const failed = summary.failed + summary.timeout;
  const notHere = runsNotHere(result);
  switch (outcome) {
    case "completed":
      if (notHere !== "") return `${formatCount(summary.completed)} runs completed, ${notHere}`;
      return summary.totalExperiments === 0 ? "nothing to run" : "all runs completed";
    case "failures":
      return `${formatCount(failed)} of ${formatCount(summary.totalExperiments)} runs failed`;
    case "failed":
      return "every run failed";
    case "cancelled":
      return "cancelled";
  }
}

const OUTCOME_EMOJI: Record<Outcome, string> = {
  completed: "✅",
  failures: "⚠️",
  failed: "❌",
  cancelled: "⏹️",
};

const STATUS_EMOJI: Record<string, string> = {
  completed: "✅",
  failed: "❌",
  timeout: "⏱️",
  cancelled: "⏹️",
};

function direction(objective: Objective): string {
  return objective.mode === "min" ? "lower is better" : "higher is better";
}

// ---------------------------------------------------------------------------------------
// Fitting to a size

/** One block of the report that can be rendered smaller: returns at most `budget` characters ("" when nothing fits). */
type Cuttable = (budget: number) => string;

interface Layout {
  /** Always kept, in order, before the cuttable parts. */
  head: string[];
  table: Cuttable;
  chart: string;
  failures: Cuttable;
  /** Always kept, after the cuttable parts. */
  foot: string[];
  /** Said instead when even the head does not fit. */
  fallback: string[];
}

const SEPARATOR = "\n\n";

function joinBlocks(blocks: readonly string[]): string {
  return blocks.filter((block) => block !== "").join(SEPARATOR);
}

/** Lays the blocks out within `maxChars`: the table, then the failures, then the chart give way. */
function fit(layout: Layout, maxChars: number): string {
  const assemble = (table: string, chart: string, failures: string): string =>
    joinBlocks([...layout.head, table, chart, failures, ...layout.foot]);
  const fullTable = layout.table(Infinity);
  const fullFailures = layout.failures(Infinity);
  const full = assemble(fullTable, layout.chart, fullFailures);
  if (full.length <= maxChars) return full;

  const fixed = joinBlocks([...layout.head, ...layout.foot]).length;
  let room = maxChars - fixed - 3 * SEPARATOR.length;
  for (let attempt = 0; attempt < 4 && room > 0; attempt += 1) {
    // The chart stays only with plenty of room left for the table and the failures.
    const chartCost = layout.chart === "" ? 0 : layout.chart.length + SEPARATOR.length;
    const wanted =
      Math.min(fullTable.length, room * 0.5) + Math.min(fullFailures.length, room * 0.25);
    const chart = chartCost > 0 && room - chartCost >= wanted ? layout.chart : "";
    const rest = room - (chart === "" ? 0 : chartCost);
    // Failures get what the table leaves, and at least a third when both compete.
    const failureBudget = Math.min(
      fullFailures.length,
      Math.max(rest - fullTable.length, Math.floor(rest * 0.35)),
    );
    const failures = layout.failures(failureBudget);
    const table = layout.table(rest - failures.length);
    const text = assemble(table, chart, failures);
    if (text.length <= maxChars) return text;
    room -= text.length - maxChars;
  }
  for (const blocks of [[...layout.head, ...layout.foot], layout.head, layout.fallback]) {
    const text = joinBlocks(blocks);
    if (text.length <= maxChars) return text;
  }
  return truncate(joinBlocks(layout.fallback), maxChars);
}

/** Rows of a table, as many as fit in a budget, with a line saying how many were left out. */
function fitRows(options: {
  budget: number;
  header: string;
  count: number;
  row: (index: number) => string;
  more: (left: number) => string;
  /** Between the rows and the "more" line. */
  gap: string;
  /** Rows left out before fitting, counted in the "more" line. */
  hidden?: number;
}): string {
  const { budget, header, count, row, more, gap, hidden = 0 } = options;
  if (count === 0) return "";
  const reserve = gap.length + more(count + hidden).length;
  let text = header;
  let shown = 0;
  for (; shown < count; shown += 1) {
    const line = row(shown);
    const isLast = shown === count - 1 && hidden === 0;
    if (text.length + 1 + line.length + (isLast ? 0 : reserve) > budget) break;
    text += `\n${line}`;
  }
  const left = count - shown + hidden;
  if (left === 0) return text;
  if (shown === 0) return more(left).length <= budget ? more(left) : "";
  return `${text}${gap}${more(left)}`;
}

interface FailureStyle {
  heading: (total: number) => string;
  /** A kind's first run with its stderr tail cut to `level`. */
  detail: (kind: FailureKind, level: (typeof TAIL_LEVELS)[number]) => string;
  kindsHeader: string;
  /** One line for a kind: count, error and example run ids; `countWidth` aligns the counts. */
  kind: (kind: FailureKind, countWidth: number) => string;
  more: (failuresLeft: number) => string;
}

/**
 * The failures: every distinct error with its count and example runs (the most common
 * first), then one run of each in detail with the largest stderr tails that fit.
 */
function failureSection(failures: readonly ExperimentResult[], style: FailureStyle): Cuttable {
  if (failures.length === 0) return () => "";
  const kinds = failureKinds(failures);
  const detailedCount = Math.min(DETAILED_FAILURES, kinds.length);
  // Failures in kinds i.. (what a cut table leaves out).
  const left = kinds.map((kind) => kind.runs.length);
  for (let i = left.length - 2; i >= 0; i -= 1) left[i]! += left[i + 1]!;
  const countWidth = formatCount(kinds[0]!.runs.length).length;
  // With a few failures that all differ, the details say everything and the table is noise.
  const isAllDetailed =
    kinds.length === detailedCount && kinds.every((kind) => kind.runs.length === 1);
  const heading = style.heading(failures.length);
  const kindsTable = (budget: number): string =>
    fitRows({
      budget,
      header: style.kindsHeader,
      count: kinds.length,
      row: (index) => style.kind(kinds[index]!, countWidth),
      more: (rowsLeft) => style.more(left[kinds.length - rowsLeft] ?? 0),
      gap: SEPARATOR,
    });
  const fullTable = isAllDetailed ? "" : kindsTable(Infinity);
  return (budget) => {
    if (heading.length > budget) return "";
    // The table keeps up to a third of the room when the details compete for it.
    const reserve = isAllDetailed
      ? 0
      : Math.min(fullTable.length + SEPARATOR.length, Math.floor(budget * 0.3));
    let details: string[] = [];
    for (const level of TAIL_LEVELS) {
      const blocks: string[] = [];
      let used = heading.length;
      for (const kind of kinds.slice(0, detailedCount)) {
        const block = style.detail(kind, level);
        if (used + SEPARATOR.length + block.length + reserve > budget) break;
        blocks.push(block);
        used += SEPARATOR.length + block.length;
      }
      if (blocks.length > details.length) details = blocks;
      if (blocks.length === detailedCount) break;
    }
    if (isAllDetailed && details.length === detailedCount) return joinBlocks([heading, ...details]);
    const room = budget - joinBlocks([heading, ...details]).length - SEPARATOR.length;
    const table = room >= fullTable.length && fullTable !== "" ? fullTable : kindsTable(room);
    if (table !== "") return joinBlocks([heading, table, ...details]);
    const more = style.more(failures.length - details.length);
    return more.length <= room
      ? joinBlocks([heading, ...details, more])
      : joinBlocks([heading, ...details]);
  };
}

// ---------------------------------------------------------------------------------------
// Markdown

function markdownTitle(model: Model, options: ReportOptions): string {
  const title =
    options.title === undefined
      ? `Sweep ${code(model.result.stageName, 100)}`
      : escapeMarkdownLine(oneLine(options.title, 200));
  return `## ${OUTCOME_EMOJI[model.outcome]} ${title}: ${statusWord(model.outcome, model.result)}`;
}

function markdownNotes(notes: readonly string[] | undefined): string {
  if (!notes || notes.length === 0) return "";
  const lines = notes
    .slice(0, MAX_NOTES)
    .map((note) => `> ${escapeMarkdownLine(oneLine(note, MAX_NOTE_CHARS))}`);
  if (notes.length > MAX_NOTES)
    lines.push(`> … ${formatCount(notes.length - MAX_NOTES)} more notes`);
  return lines.join("\n>\n");
}

/** The cost to show: the option, else the StageResult's own estimate. */
function costOf(result: StageResult, options: ReportOptions): number | undefined {
  return options.estimatedCostUsd ?? result.estimatedCostUsd ?? undefined;
}

function markdownSummary(model: Model, options: ReportOptions): string {
  const { summary, commitSha, backend, gpuType } = model.result;
  const cost = costOf(model.result, options);
  const rows = [
    "| runs | ✅ completed | ❌ failed | ⏱️ timed out | ⏹️ cancelled | ⏭️ skipped | success rate | mean duration | total duration |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    `| ${[
      summary.totalExperiments,
      summary.completed,
      summary.failed,
      summary.timeout,
      summary.cancelled,
      summary.skipped,
    ]
      .map(formatCount)
      .join(
        " | ",
      )} | ${formatPercent(summary.successRate)} | ${formatDuration(summary.meanDurationSeconds)} | ${formatDuration(summary.totalDurationSeconds)} |`,
  ];
  const facts: string[] = [];
  if (commitSha) facts.push(`commit ${code(shortSha(commitSha))}`);
  facts.push(`backend ${code(backend, 40)} on ${code(gpuType, 40)}`);
  if (cost !== undefined) facts.push(`estimated GPU cost **${formatUsd(cost)}** (estimated)`);
  return `${rows.join("\n")}\n\n${facts.join(" · ")}`;
}

function metricsTableMarkdown(group: Group, objective: Objective): string {
  const keys = [
    objective.metric,
    ...Object.keys(group.metrics)
      .filter((k) => k !== objective.metric)
      .sort(),
  ];
  const present = keys.filter((key) => group.metrics[key]);
  const rows = present.slice(0, MAX_BEST_ROWS).map((key) => {
    const s = group.metrics[key]!;
    const mark = key === objective.metric ? " 🎯" : "";
    return `| ${code(key)}${mark} | ${formatStats(s)} | ${formatCount(s.n)} | ${formatNumber(s.min)} | ${formatNumber(s.max)} |`;
  });
  if (present.length > MAX_BEST_ROWS)
    rows.push(`| … ${formatCount(present.length - MAX_BEST_ROWS)} more metrics | | | | |`);
  return ["| metric | mean ± std | n | min | max |", "|---|---:|---:|---:|---:|", ...rows].join(
    "\n",
  );
}

function paramsTableMarkdown(entries: readonly [string, unknown][]): string {
  const rows = entries
    .slice(0, MAX_BEST_ROWS)
    .map(([key, value]) => `| ${code(key)} | ${code(valueText(value))} |`);
  if (entries.length > MAX_BEST_ROWS)
    rows.push(`| … ${formatCount(entries.length - MAX_BEST_ROWS)} more | |`);
  return ["| parameter | value |", "|---|---|", ...rows].join("\n");
}

/** Leaves of a nested config as dotted keys. */
function flatten(
  value: Record<string, unknown>,
  prefix = "",
  out: [string, unknown][] = [],
): [string, unknown][] {
  for (const [key, inner] of Object.entries(value)) {
    const dotted = prefix ? `${prefix}.${key}` : key;
    if (
      inner !== null &&
      typeof inner === "object" &&
      !Array.isArray(inner) &&
      out.length < MAX_BEST_ROWS * 4
    ) {
      flatten(inner as Record<string, unknown>, dotted, out);
    } else {
      out.push([dotted, inner]);
    }
  }
  return out;
}

function markdownBest(model: Model): string {
  const { result, objective, best } = model;
  const heading = "### 🏆 Best configuration";
  const metric = code(objective.metric);
  if (best?.objective) {
    const { group } = best;
    const stats = best.objective;
    const bestRun = result.bestRun ? ` · best single run ${code(result.bestRun, 120)}` : "";
    const line =
      `${code(group.architecture, 120)} on ${code(group.dataset, 120)}: ${metric} = ` +
      `**${formatStats(stats)}** (mean ± std over n = ${formatCount(stats.n)} seeds, ${direction(objective)})${bestRun}`;
    const params = Object.entries(group.params);
    return joinBlocks([
      heading,
      line,
      params.length > 0 ? paramsTableMarkdown(params) : "",
      metricsTableMarkdown(group, objective),
    ]);
  }
  if (result.bestConfig) {
    const metrics = Object.entries(result.bestMetrics ?? {}).slice(0, MAX_BEST_ROWS);
    const metricRows = metrics.map(([key, value]) => `| ${code(key)} | ${formatNumber(value)} |`);
    return joinBlocks([
      heading,
      `Best single run${result.bestRun ? ` ${code(result.bestRun, 120)}` : ""} (no per-group statistics in this result).`,
      paramsTableMarkdown(flatten(result.bestConfig)),
      metricRows.length > 0 ? ["| metric | value |", "|---|---:|", ...metricRows].join("\n") : "",
    ]);
  }
  return joinBlocks([heading, `No run reported ${metric}, so there is no best configuration.`]);
}

/** The group table's headings, user names written with `label`, and which columns are numbers. */
function tableHeadings(
  model: Model,
  label: (text: string) => string,
  objectiveHeading: (metric: string, mode: Objective["mode"]) => string,
): { headers: string[]; isNumeric: boolean[] } {
  const headers = [
    "#",
    "architecture",
    "dataset",
    ...model.paramKeys.map((key) => label(key)),
    "n",
    objectiveHeading(label(model.objective.metric), model.objective.mode),
    ...model.metricKeys.map((key) => label(key)),
  ];
  const isNumeric = headers.map((_, i) => i === 0 || i >= 3 + model.paramKeys.length);
  return { headers, isNumeric };
}

/** The cells of a group's row; `user` formats text that came from users. */
function rowCells(model: Model, entry: RankedGroup, user: (text: string) => string): string[] {
  const { group, objective, rank } = entry;
  const runs = objective && objective.n !== group.n ? `${objective.n}/${group.n}` : String(group.n);
  return [
    rank === null ? "-" : String(rank),
    user(group.architecture),
    user(group.dataset),
    ...model.paramKeys.map((key) =>
      key in group.params ? user(valueText(group.params[key])) : "-",
    ),
    runs,
    formatStats(objective),
    ...model.metricKeys.map((key) => {
      const stats = group.metrics[key];
      return stats && stats.n > 0 ? formatNumber(stats.mean) : "-";
    }),
  ];
}

function hiddenColumnsNote(model: Model): string {
  const hidden: string[] = [];
  if (model.hiddenParamKeys > 0)
    hidden.push(`${formatCount(model.hiddenParamKeys)} more hyperparameters`);
  if (model.hiddenMetricKeys > 0)
    hidden.push(`${formatCount(model.hiddenMetricKeys)} more metrics`);
  return hidden.length > 0 ? ` Not shown: ${hidden.join(" and ")} (in the artifact).` : "";
}

function markdownTable(model: Model): Cuttable {
  const { headers, isNumeric } = tableHeadings(
    model,
    (text) => code(text),
    (metric, mode) => `${metric} ${mode === "min" ? "↓" : "↑"} mean ± std`,
  );
  const intro =
    `### Results by configuration\n\nBest first by the mean of ${code(model.objective.metric)} over seeds ` +
    `(${direction(model.objective)}); n = seeds with a result.${hiddenColumnsNote(model)}`;
  const header = `${intro}\n\n| ${headers.join(" | ")} |\n|${isNumeric.map((n) => (n ? "---:" : "---")).join("|")}|`;
  const row = (index: number): string =>
    `| ${rowCells(model, model.ranked[index]!, (text) => code(text)).join(" | ")} |`;
  const more = (left: number): string => `… ${formatCount(left)} more groups in the artifact`;
  return (budget) =>
    fitRows({ budget, header, count: model.ranked.length, row, more, gap: SEPARATOR });
}

/** A number as Mermaid's xychart grammar reads it: digits and a point, no exponent. */
function mermaidNumber(value: number, decimals: number): string {
  const text = value.toFixed(Math.min(20, Math.max(0, decimals)));
  const stripped = stripZeros(text);
  return stripped === "-0" ? "0" : stripped;
}

function markdownChart(model: Model): string {
  if (!model.hasChart) return "";
  const ranked = model.ranked.filter((entry) => entry.objective);
  const values = ranked.map((entry) => entry.objective!.mean);
  const maxAbs = Math.max(...values.map(Math.abs));
  // Mermaid reads no exponents: tiny or huge values are scaled and the axis says by how much.
  const exponent =
    maxAbs > 0 && (maxAbs < 1e-3 || maxAbs >= 1e6) ? Math.floor(Math.log10(maxAbs)) : 0;
  const scaled = values.map((v) => v / 10 ** exponent);
  const min = Math.min(...scaled);
  const max = Math.max(...scaled);
  const spread = max - min;
  // The axis spans the data with a margin (from 0 when all values are equal), so close
  // values still show as different bars; decimals follow the spread, not just the size.
  const low = spread === 0 ? Math.min(0, min) : min - spread * 0.1;
  const high = spread === 0 ? Math.max(0, max) || 1 : max + spread * 0.1;
  const magnitude = (x: number): number => (x > 0 ? Math.floor(Math.log10(x)) : 0);
  const decimals = Math.min(
    12,
    Math.max(
      3 - magnitude(Math.max(Math.abs(min), Math.abs(max))),
      spread > 0 ? 2 - magnitude(spread) : 0,
    ),
  );
  const safeMetric = model.objective.metric.replace(/[^A-Za-z0-9_./ -]/g, "_").slice(0, 60);
  const axis = exponent === 0 ? safeMetric : `${safeMetric} (x 1e${exponent})`;
  const lines = [
    "xychart-beta",
    `    title "Mean ${safeMetric} by configuration (rank as in the table)"`,
    `    x-axis "rank" [${ranked.map((entry) => `"#${entry.rank}"`).join(", ")}]`,
    `    y-axis "${axis}" ${mermaidNumber(low, decimals + 1)} --> ${mermaidNumber(high, decimals + 1)}`,
    `    bar [${scaled.map((v) => mermaidNumber(v, decimals)).join(", ")}]`,
  ];
  return fenced(lines.join("\n"), "mermaid");
}

function othersLike(kind: FailureKind): string {
  const others = kind.runs.length - 1;
  return others > 0 ? ` (and ${formatCount(others)} more like it)` : "";
}

function exampleRuns(kind: FailureKind, format: (runId: string) => string): string {
  const shown = kind.runs.slice(0, 3).map((run) => format(run.runId));
  return kind.runs.length > 3 ? `${shown.join(", ")}, …` : shown.join(", ");
}

function kindError(kind: FailureKind): string {
  return kind.lastLine === "" || kind.lastLine === kind.headline
    ? kind.headline
    : `${kind.headline} · ${kind.lastLine}`;
}

const markdownFailureStyle: FailureStyle = {
  heading: (total) => `### ❌ Failures (${formatCount(total)})`,
  detail: (kind, level) => {
    const experiment = kind.runs[0]!;
    const duration = formatDuration(experiment.durationSeconds);
    const line =
      `${STATUS_EMOJI[experiment.status] ?? ""} ${code(experiment.runId, 120)}: **${experiment.status}** ` +
      `after ${duration}${othersLike(kind)}: ${code(kind.headline, MAX_HEADLINE_CHARS)}`;
    const tail = tailOf(experiment, level.lines, level.chars);
    if (tail.text === "") return line;
    const what = `stderr, ${tail.isCut ? "last " : ""}${formatCount(tail.lines)} line${tail.lines === 1 ? "" : "s"}`;
    return `${line}\n\n<details><summary>${what}</summary>\n\n${fenced(tail.text, "text")}\n\n</details>`;
  },
  kindsHeader: "| runs | status | error | e.g. |\n|---:|---|---|---|",
  kind: (kind) =>
    `| ${formatCount(kind.runs.length)} | ${kind.status} | ${code(kindError(kind), 240)} | ` +
    `${exampleRuns(kind, (runId) => code(runId, 80))} |`,
  more: (failuresLeft) => `… ${formatCount(failuresLeft)} more failures in the artifact`,
};

/** How many improvements of a study's best value the report lists. */
const MAX_IMPROVEMENTS = 12;

/**
 * With `num_trials`: per study, the objective over trials as the best value so far, listed
 * where it improved (`trial 0: 0.52 → trial 3: 0.31 → …`), plus trial counts.
 */
function trialLines(result: StageResult, format: (text: string) => string): string[] {
  if (!result.trials?.length) return [];
  const sign = result.objective.mode === "min" ? 1 : -1;
  const studies = new Map<string, NonNullable<StageResult["trials"]>>();
  for (const trial of result.trials) {
    const key = `${trial.architecture} × ${trial.dataset}`;
    studies.set(key, [...(studies.get(key) ?? []), trial]);
  }
  const lines: string[] = [];
  for (const [study, trials] of studies) {
    const ordered = [...trials].sort((a, b) => a.number - b.number);
    const improvements: string[] = [];
    let best: number | undefined;
    for (const trial of ordered) {
      if (trial.value === null) continue;
      if (best === undefined || sign * (trial.value - best) < 0) {
        best = trial.value;
        improvements.push(`trial ${trial.number}: ${formatNumber(trial.value)}`);
      }
    }
    const shown =
      improvements.length > MAX_IMPROVEMENTS
        ? [...improvements.slice(0, 2), "…", ...improvements.slice(-(MAX_IMPROVEMENTS - 2))]
        : improvements;
    const complete = ordered.filter((t) => t.state === "complete").length;
    const failed = ordered.filter((t) => t.state === "failed").length;
    lines.push(
      `${format(study)}: ${ordered.length} trials (${complete} complete, ${failed} failed); best ${result.objective.metric} so far: ${shown.length ? shown.join(" → ") : "none yet"}`,
    );
  }
  return lines;
}

function markdownTrials(result: StageResult): string {
  const lines = trialLines(result, (text) => code(text));
  return lines.length
    ? `### Objective over trials\n\n${lines.map((line) => `- ${line}`).join("\n")}`
    : "";
}

function textTrials(result: StageResult): string {
  const lines = trialLines(result, (text) => text);
  return lines.length
    ? `Objective over trials\n${lines.map((line) => `  ${line}`).join("\n")}`
    : "";
}

/**
 * The final report of a stage as GitHub markdown: title with status, summary counts, the
 * best configuration by mean objective over seeds, a table of groups best first, failures
 * with their stderr tails, a chart for 2-30 groups and the run link. It stays under
 * `maxChars` (default 60,000) whatever the sweep's size.
 *
 * @example
 * const body = renderMarkdown(stageResult, { marker: "tmgg-sweep:stage1", runUrl, estimatedCostUsd: 1.2 });
 * await octokit.rest.issues.updateComment({ owner, repo, comment_id, body });
 */
export function renderMarkdown(result: StageResult, options: ReportOptions = {}): string {
  const maxChars = checkOptions(options, DEFAULT_MARKDOWN_MAX_CHARS);
  const marker = markerComment(options.marker);
  const url = checkUrl(options.runUrl);
  const model = buildModel(result);
  const title = [marker, markdownTitle(model, options)].filter((line) => line !== null).join("\n");
  const link = url ? `🔗 [Workflow run and artifacts](${linkDestination(url)})` : "";
  return fit(
    {
      head: [
        title,
        markdownNotes([...stageNotes(result), ...(options.notes ?? [])]),
        markdownSummary(model, options),
        markdownBest(model),
        markdownTrials(result),
      ],
      table: markdownTable(model),
      chart: markdownChart(model),
      failures: failureSection(model.failures, markdownFailureStyle),
      foot: [link],
      fallback: [
        title,
        "The report does not fit here; the full results are in the artifact.",
        link,
      ],
    },
    maxChars,
  );
}

// ---------------------------------------------------------------------------------------
// Plain text

function textWidth(text: string): number {
  let width = 0;
  for (const _ of text) width += 1;
  return width;
}

/** Columns padded to a common width, two spaces apart; numbers right-aligned. */
function alignRows(rows: readonly (readonly string[])[], isNumeric: readonly boolean[]): string[] {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, textWidth(cell))));
  return rows.map((row) =>
    row
      .map((cell, i) => {
        const padding = " ".repeat((widths[i] ?? 0) - textWidth(cell));
        return isNumeric[i] ? padding + cell : cell + padding;
      })
      .join("  ")
      .trimEnd(),
  );
}

function plain(text: string, max = MAX_CELL_CHARS): string {
  const line = oneLine(text, max);
  return line === "" ? '""' : line;
}

function indent(text: string, prefix = "  "): string {
  return text
    .split("\n")
    .map((line) => (line === "" ? line : prefix + line))
    .join("\n");
}

function textHead(model: Model, options: ReportOptions): string[] {
  const { summary, commitSha, backend, gpuType } = model.result;
  const title =
    options.title === undefined
      ? `Sweep ${plain(model.result.stageName, 100)}`
      : plain(options.title, 200);
  const lines = [`${title}: ${statusWord(model.outcome, model.result)}`];
  const allNotes = [...stageNotes(model.result), ...(options.notes ?? [])];
  const notes = allNotes.slice(0, MAX_NOTES).map((note) => `! ${plain(note, MAX_NOTE_CHARS)}`);
  if (allNotes.length > MAX_NOTES)
    notes.push(`! … ${formatCount(allNotes.length - MAX_NOTES)} more notes`);
  const counts = [
    `${formatCount(summary.totalExperiments)} total`,
    `${formatCount(summary.completed)} completed`,
    `${formatCount(summary.failed)} failed`,
    `${formatCount(summary.timeout)} timed out`,
    `${formatCount(summary.cancelled)} cancelled`,
    `${formatCount(summary.skipped)} skipped`,
  ].join(", ");
  const facts: [string, string][] = [
    ["runs", counts],
    ["success rate", formatPercent(summary.successRate)],
    [
      "duration",
      `mean ${formatDuration(summary.meanDurationSeconds)}, total ${formatDuration(summary.totalDurationSeconds)}`,
    ],
  ];
  const cost = costOf(model.result, options);
  if (cost !== undefined) facts.push(["GPU cost", `${formatUsd(cost)} (estimated)`]);
  if (commitSha) facts.push(["commit", shortSha(commitSha)]);
  facts.push(["backend", `${plain(backend, 40)} on ${plain(gpuType, 40)}`]);
  const factLines = alignRows(facts, [false, false]).map((line) => `  ${line}`);
  return [[...lines, ...notes].join("\n"), factLines.join("\n")];
}

function textBest(model: Model): string {
  const { result, objective, best } = model;
  const heading = `Best configuration (${plain(objective.metric)}, ${direction(objective)}, mean ± std over seeds)`;
  if (best?.objective) {
    const { group } = best;
    const rows: string[][] = [
      ["architecture", plain(group.architecture, 120)],
      ["dataset", plain(group.dataset, 120)],
    ];
    for (const [key, value] of Object.entries(group.params).slice(0, MAX_BEST_ROWS))
      rows.push([plain(key), plain(valueText(value))]);
    const metricKeys = [
      objective.metric,
      ...Object.keys(group.metrics)
        .filter((k) => k !== objective.metric)
        .sort(),
    ];
    for (const key of metricKeys.slice(0, MAX_BEST_ROWS)) {
      const stats = group.metrics[key];
      if (stats)
        rows.push([
          plain(key),
          `${formatStats(stats)} (n=${formatCount(stats.n)}, min ${formatNumber(stats.min)}, max ${formatNumber(stats.max)})`,
        ]);
    }
    if (result.bestRun) rows.push(["best run", plain(result.bestRun, 120)]);
    return `${heading}\n${indent(alignRows(rows, [false, false]).join("\n"))}`;
  }
  if (result.bestConfig) {
    const rows = flatten(result.bestConfig)
      .slice(0, MAX_BEST_ROWS)
      .map(([key, value]): string[] => [plain(key), plain(valueText(value))]);
    for (const [key, value] of Object.entries(result.bestMetrics ?? {}).slice(0, MAX_BEST_ROWS))
      rows.push([plain(key), formatNumber(value)]);
    if (result.bestRun) rows.push(["best run", plain(result.bestRun, 120)]);
    return `Best single run (no per-group statistics in this result)\n${indent(alignRows(rows, [false, false]).join("\n"))}`;
  }
  return `${heading}\n  none: no run reported ${plain(objective.metric)}`;
}

function textTable(model: Model, maxGroups = Infinity): Cuttable {
  if (model.ranked.length === 0) return () => "";
  const shown = model.ranked.slice(0, maxGroups);
  const { headers, isNumeric } = tableHeadings(
    model,
    (text) => plain(text),
    (metric, mode) => `${metric} (${mode})`,
  );
  const cells = shown.map((entry) => rowCells(model, entry, (text) => plain(text)));
  const lines = alignRows([headers, ...cells], isNumeric);
  const heading = `Groups, best first${hiddenColumnsNote(model)}`;
  const header = `${heading}\n${indent(lines[0]!)}`;
  const row = (index: number): string => `  ${lines[index + 1]!}`;
  const more = (left: number): string => `  … ${formatCount(left)} more groups in the full results`;
  const hidden = model.ranked.length - shown.length;
  return (budget) => fitRows({ budget, header, count: shown.length, row, more, gap: "\n", hidden });
}

const textFailureStyle: FailureStyle = {
  heading: (total) => `Failures (${formatCount(total)})`,
  detail: (kind, level) => {
    const experiment = kind.runs[0]!;
    const line =
      `  ${plain(experiment.runId, 120)}  ${experiment.status} after ` +
      `${formatDuration(experiment.durationSeconds)}${othersLike(kind)}: ${kind.headline}`;
    const tail = tailOf(experiment, level.lines, level.chars);
    if (tail.text === "") return line;
    return `${line}\n${indent(tail.text, "    | ")}`;
  },
  kindsHeader: "  By error:",
  kind: (kind, countWidth) =>
    `  ${formatCount(kind.runs.length).padStart(countWidth)} x ${kind.status}: ${truncate(kindError(kind), 240)} ` +
    `(e.g. ${exampleRuns(kind, (runId) => plain(runId, 80))})`,
  more: (failuresLeft) => `  … ${formatCount(failuresLeft)} more failures in the artifact`,
};

/**
 * The final report of a stage as plain text for a terminal: the same information as
 * {@link renderMarkdown} in aligned columns, without markdown or chart. Unlimited in size
 * unless `maxChars` is given.
 */
export function renderText(result: StageResult, options: ReportOptions = {}): string {
  const maxChars = checkOptions(options, Infinity);
  const url = checkUrl(options.runUrl);
  const model = buildModel(result);
  const head = textHead(model, options);
  const link = url ? `Run: ${url}` : "";
  const text = fit(
    {
      head: [...head, textBest(model), textTrials(result)],
      table: textTable(model, options.maxGroups),
      chart: "",
      failures: failureSection(model.failures, textFailureStyle),
      foot: [link],
      fallback: [
        head[0] ?? "",
        "The report does not fit here; the full results are in the artifact.",
        link,
      ],
    },
    maxChars,
  );
  return `${text}\n`.length <= maxChars ? `${text}\n` : text;
}

// ---------------------------------------------------------------------------------------
// Progress

function count(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

function metricsSummary(metrics: Record<string, number>): string {
  const entries = Object.entries(metrics).slice(0, 3);
  return entries.map(([key, value]) => `${code(key, 40)} ${formatNumber(value)}`).join(", ");
}

/**
 * The live comment while a sweep runs: counts, a progress bar, the commit, the run link and
 * the latest results. Its size is bounded (at most 10 recent results, each cut short).
 *
 * @example
 * const body = renderProgressMarkdown({ stage: "stage1", total: 40, completed: 12, failed: 1, running: 4, skipped: 0, marker });
 */
export function renderProgressMarkdown(progress: SweepProgress): string {
  const marker = markerComment(progress.marker);
  const url = checkUrl(progress.runUrl);
  const total = count(progress.total);
  const completed = count(progress.completed);
  const failed = count(progress.failed);
  const running = count(progress.running);
  const skipped = count(progress.skipped);
  const done = completed + failed + skipped;
  const pending = Math.max(0, total - done - running);
  const fraction = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(fraction * 20);
  const bar = `\`${"█".repeat(filled)}${"░".repeat(20 - filled)}\``;
  const title = `## ⏳ Sweep ${code(progress.stage, 100)}: ${formatCount(done)} of ${formatCount(total)} runs done`;
  const counts = [
    `✅ ${formatCount(completed)} completed`,
    `❌ ${formatCount(failed)} failed`,
    `🔄 ${formatCount(running)} running`,
    `⏭️ ${formatCount(skipped)} skipped`,
    `🕓 ${formatCount(pending)} pending`,
  ].join(" · ");
  const facts: string[] = [];
  if (progress.commitSha) facts.push(`commit ${code(shortSha(progress.commitSha))}`);
  if (url) facts.push(`[workflow run](${linkDestination(url)})`);
  const recent = (progress.recent ?? []).slice(-RECENT_SHOWN).reverse();
  const recentTable =
    recent.length === 0
      ? ""
      : [
          "**Latest results**",
          "",
          "| run | status | duration | result |",
          "|---|---|---:|---|",
          ...recent.map((experiment) => {
            const outcome =
              experiment.status === "completed"
                ? metricsSummary(experiment.metrics)
                : code(headlineOf(experiment), 160);
            return `| ${code(experiment.runId, 120)} | ${STATUS_EMOJI[experiment.status] ?? ""} ${experiment.status} | ${formatDuration(experiment.durationSeconds)} | ${outcome} |`;
          }),
        ].join("\n");
  return joinBlocks([
    [marker, title].filter((line) => line !== null).join("\n"),
    `${bar} ${formatPercent(fraction)}\n\n${counts}`,
    facts.join(" · "),
    recentTable,
  ]);
}
