import { describe, expect, it } from "vitest";
import {
  DEFAULT_MARKDOWN_MAX_CHARS,
  formatDuration,
  formatNumber,
  renderMarkdown,
  renderProgressMarkdown,
  renderText,
} from "./report.ts";
import type { ExperimentResult, Group, Objective, StageResult } from "./schemas.ts";

const SEPARATOR = "\n--- stderr (last lines) ---\n";

function experiment(runId: string, overrides: Partial<ExperimentResult> = {}): ExperimentResult {
  return {
    runId,
    config: {},
    metrics: {},
    checkpointPath: null,
    status: "completed",
    errorMessage: null,
    durationSeconds: 42,
    startedAt: "2025-01-01T00:00:00.000Z",
    completedAt: "2025-01-01T00:00:42.000Z",
    attempt: 1,
    backend: "local",
    gpuType: "A10G",
    logsPath: null,
    ...overrides,
  };
}

/** The val_loss mean of group i: group 0 is not the best, the best sits in the middle. */
function meanOf(i: number, count: number): number {
  return 0.1 + Math.abs(i - Math.floor(count / 2)) * 0.001;
}

function makeGroup(i: number, count: number): Group {
  const mean = meanOf(i, count);
  return {
    groupId: `g${String(i).padStart(5, "0")}`,
    architecture: i % 2 === 0 ? "models/gnn/standard" : "models/attention/multi_layer",
    dataset: "data/sbm_default",
    params: {
      learning_rate: 10 ** -(1 + (i % 4)),
      "model.num_layers": 2 + (i % 7),
      "model.hidden": 32 * (1 + (i % 8)),
    },
    n: 3,
    runIds: [`run-${i}-1`, `run-${i}-2`, `run-${i}-3`],
    metrics: {
      val_loss: { n: 3, mean, std: 0.01 + (i % 3) * 0.001, min: mean - 0.01, max: mean + 0.01 },
      test_loss: { n: 3, mean: mean * 1.1, std: 0.02, min: mean, max: mean * 1.2 },
    },
  };
}

interface FixtureOptions {
  failures?: number;
  errorMessage?: (i: number) => string;
  cancelled?: number;
  objective?: Objective;
}

/** A StageResult with `groupCount` groups of 3 seeds, plus failed runs. */
function makeResult(groupCount: number, options: FixtureOptions = {}): StageResult {
  const failures = options.failures ?? 0;
  const cancelled = options.cancelled ?? 0;
  const groups = Array.from({ length: groupCount }, (_, i) => makeGroup(i, groupCount));
  const best = groups[Math.floor(groupCount / 2)];
  const completed = groupCount * 3;
  const message =
    options.errorMessage ??
    ((i: number) =>
      `the experiment exited with code 1${SEPARATOR}Traceback\nValueError: bad value ${i}`);
  const experiments = [
    ...Array.from({ length: Math.min(completed, 20) }, (_, i) =>
      experiment(`run-${i}`, { metrics: { val_loss: 0.1, test_loss: 0.11 } }),
    ),
    ...Array.from({ length: failures }, (_, i) =>
      experiment(`failed-run-${i}`, {
        status: i % 5 === 4 ? "timeout" : "failed",
        errorMessage: message(i),
      }),
    ),
    ...Array.from({ length: cancelled }, (_, i) =>
      experiment(`cancelled-run-${i}`, {
        status: "cancelled",
        errorMessage: "cancelled by the user",
      }),
    ),
  ];
  const timeouts = Math.floor(failures / 5);
  const total = completed + failures + cancelled;
  return {
    stageName: "stage1",
    experiments,
    bestConfig: best
      ? { ...best.params, architecture: best.architecture, dataset: best.dataset }
      : null,
    bestMetrics: best ? { val_loss: best.metrics["val_loss"]!.mean } : null,
    summary: {
      totalExperiments: total,
      completed,
      failed: failures - timeouts,
      timeout: timeouts,
      cancelled,
      skipped: 0,
      successRate: total > 0 ? completed / total : 0,
      meanDurationSeconds: 252,
      totalDurationSeconds: 252 * total,
    },
    startedAt: "2025-01-01T00:00:00.000Z",
    completedAt: "2025-01-01T02:00:00.000Z",
    objective: options.objective ?? { metric: "val_loss", mode: "min" },
    groups,
    bestGroup: best?.groupId ?? null,
    bestRun: best ? `${best.runIds[0]}` : null,
    commitSha: "0123456789abcdef0123456789abcdef01234567",
    backend: "modal",
    gpuType: "A10G",
    estimatedCostUsd: null,
  };
}

/** Cells of a markdown table row, split the way GFM splits them (backslash escapes skipped). */
function unescapedPipes(line: string): number {
  let pipes = 0;
  for (let i = 0; i < line.length; i += 1) {
    if (line[i] === "\\") i += 1;
    else if (line[i] === "|") pipes += 1;
  }
  return pipes;
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

/** Markdown outside fenced code blocks, which GitHub shows as inert text. */
function outsideFences(markdown: string): string {
  const kept: string[] = [];
  let fence: string | null = null;
  for (const line of markdown.split("\n")) {
    const opening = /^(`{3,})/.exec(line);
    if (fence === null && opening) fence = opening[1]!;
    else if (fence !== null && line === fence) fence = null;
    else if (fence === null) kept.push(line);
  }
  expect(fence, "an unclosed fence").toBeNull();
  return kept.join("\n");
}

/** Fenced blocks open and close in pairs, and details elements balance outside them. */
function expectWellFormed(markdown: string): void {
  const prose = outsideFences(markdown);
  expect(count(prose, "<details>")).toBe(count(prose, "</details>"));
}

describe("formatNumber", () => {
  it("keeps 4 significant digits and uses exponents for tiny and huge values", () => {
    expect(formatNumber(0.123456)).toBe("0.1235");
    expect(formatNumber(1.5)).toBe("1.5");
    expect(formatNumber(1234.5)).toBe("1235");
    expect(formatNumber(9999.7)).toBe("10000");
    expect(formatNumber(12345.6)).toBe("12346");
    expect(formatNumber(0.0000123456)).toBe("1.235e-5");
    expect(formatNumber(2e9)).toBe("2e9");
    expect(formatNumber(-0)).toBe("0");
    expect(formatNumber(-0.5)).toBe("-0.5");
    expect(formatNumber(Number.NaN)).toBe("NaN");
  });
});

describe("formatDuration", () => {
  it("writes durations the way people read them", () => {
    expect(formatDuration(0.25)).toBe("250 ms");
    expect(formatDuration(4.21)).toBe("4.2 s");
    expect(formatDuration(42)).toBe("42 s");
    expect(formatDuration(245)).toBe("4m 05s");
    expect(formatDuration(7380)).toBe("2h 03m");
    expect(formatDuration(3 * 86400 + 4 * 3600)).toBe("3d 04h");
  });
});

describe("renderMarkdown", () => {
  it("shows the best configuration first with its mean ± std over seeds", () => {
    const result = makeResult(7);
    const markdown = renderMarkdown(result);
    const best = result.groups[3]!;
    const bestSection = markdown.indexOf("### 🏆 Best configuration");
    const table = markdown.indexOf("### Results by configuration");
    expect(bestSection).toBeGreaterThan(-1);
    expect(table).toBeGreaterThan(bestSection);
    const section = markdown.slice(bestSection, table);
    expect(section).toContain("`models/attention/multi_layer` on `data/sbm_default`");
    expect(section).toContain(
      `**${formatNumber(best.metrics["val_loss"]!.mean)} ± ${formatNumber(best.metrics["val_loss"]!.std)}**`,
    );
    expect(section).toContain("n = 3 seeds");
    expect(section).toContain("| `model.num_layers` | `5` |");
    expect(section).toContain("| `learning_rate` | `1e-4` |");
    // The table's first row is the same group, ranked 1.
    const rows = markdown
      .slice(table)
      .split("\n")
      .filter((line) => /^\| \d+ \|/.test(line));
    expect(rows).toHaveLength(7);
    expect(rows[0]).toMatch(
      /^\| 1 \| `models\/attention\/multi_layer` \| `data\/sbm_default` \| `1e-4` \| `128` \| `5` \| 3 \| 0\.1 ± 0\.01 \| 0\.11 \|$/,
    );
    const means = rows.map((row) => Number(row.split(" | ")[7]!.split(" ± ")[0]));
    expect(means).toEqual([...means].sort((a, b) => a - b));
  });

  it("ranks highest first when the objective is maximized", () => {
    const result = makeResult(5, { objective: { metric: "val_loss", mode: "max" } });
    result.bestGroup = null;
    const markdown = renderMarkdown(result);
    const table = markdown.slice(markdown.indexOf("### Results by configuration"));
    const rows = table.split("\n").filter((line) => /^\| \d+ \|/.test(line));
    expect(rows[0]).toMatch(
      /^\| 1 \| `models\/gnn\/standard` \| `data\/sbm_default` \| `0\.1` \| `32` \| `2` \| 3 \| 0\.102 ± 0\.01 \|/,
    );
    expect(markdown).toContain("higher is better");
  });

  it("puts the status, counts, commit, backend and estimated cost in the header", () => {
    const markdown = renderMarkdown(makeResult(4, { failures: 2 }), {
      marker: "tmgg-sweep:stage1",
      estimatedCostUsd: 12.345,
      notes: ["budget reached"],
      runUrl: "https://github.com/o/r/actions/runs/1",
    });
    expect(
      markdown.startsWith("<!-- tmgg-sweep:stage1 -->\n## ⚠️ Sweep `stage1`: 2 of 14 runs failed"),
    ).toBe(true);
    expect(markdown).toContain("| 14 | 12 | 2 | 0 | 0 | 0 | 85.7 % | 4m 12s | 58m 48s |");
    expect(markdown).toContain(
      "commit `0123456` · backend `modal` on `A10G` · estimated GPU cost **$12.35** (estimated)",
    );
    expect(markdown).toContain("> budget reached");
    expect(
      markdown
        .trimEnd()
        .endsWith("🔗 [Workflow run and artifacts](https://github.com/o/r/actions/runs/1)"),
    ).toBe(true);
    expect(renderMarkdown(makeResult(4))).toMatch(/^## ✅ Sweep `stage1`: all runs completed/);
    expect(renderMarkdown(makeResult(4, { cancelled: 3 }))).toMatch(
      /^## ⏹️ Sweep `stage1`: cancelled/,
    );
  });

  it("lists failures with their run id and a collapsed stderr tail", () => {
    const ansi = "\u001b[31mRuntimeError: CUDA out of memory\u001b[0m";
    const markdown = renderMarkdown(
      makeResult(3, {
        failures: 1,
        errorMessage: () =>
          `the experiment exited with code 1${SEPARATOR}epoch 1\r 50%\r100%\n${ansi}`,
      }),
    );
    expect(markdown).toContain("### ❌ Failures (1)");
    expect(markdown).toContain(
      "❌ `failed-run-0`: **failed** after 42 s: <code>the experiment exited with code 1</code>",
    );
    expect(markdown).toContain(
      "<details><summary>stderr, 2 lines</summary>\n\n```text\n100%\nRuntimeError: CUDA out of memory\n```\n\n</details>",
    );
    expectWellFormed(markdown);
  });

  it("stays under maxChars with 10,000 groups and 5,000 failures of 100 KB each", () => {
    const stderr = `${"x".repeat(99)}\n`.repeat(1000);
    // 500 distinct errors (distinct 100 KB strings cost memory; 500 of them make the point).
    const messages = Array.from(
      { length: 500 },
      (_, k) =>
        `the experiment exited with code ${k % 3}${SEPARATOR}${stderr}final line: CUDA error ${k}`,
    );
    expect(messages[0]!.length).toBeGreaterThan(100_000);
    const result = makeResult(10_000, { failures: 5_000, errorMessage: (i) => messages[i % 500]! });
    const started = performance.now();
    const markdown = renderMarkdown(result, {
      marker: "tmgg-sweep:stage1",
      runUrl: "https://example.test/run/1",
    });
    const elapsedMs = performance.now() - started;
    expect(markdown.length).toBeLessThanOrEqual(DEFAULT_MARKDOWN_MAX_CHARS);
    expect(markdown.length).toBeGreaterThan(DEFAULT_MARKDOWN_MAX_CHARS * 0.9);
    expect(markdown).toMatch(/… [\d,]+ more groups in the artifact/);
    expect(markdown).toMatch(/… [\d,]+ more failures in the artifact/);
    expect(markdown).toContain("### 🏆 Best configuration");
    expect(markdown).toContain("| 1 | `models/gnn/standard` |");
    expect(markdown).toContain("final line: CUDA error 0\n```");
    expect(markdown).toContain("(and 9 more like it)");
    expect(markdown).not.toContain("```mermaid");
    expect(markdown).toContain("[Workflow run and artifacts](https://example.test/run/1)");
    expectWellFormed(markdown);
    expect(elapsedMs).toBeLessThan(5_000);

    for (const maxChars of [1_000, 3_000, 10_000, 30_000]) {
      const small = renderMarkdown(result, { maxChars, marker: "tmgg-sweep:stage1" });
      expect(small.length).toBeLessThanOrEqual(maxChars);
      expect(small.startsWith("<!-- tmgg-sweep:stage1 -->")).toBe(true);
      expectWellFormed(small);
    }
  });

  it("groups failures by error, showing one run of each in detail and all with their counts", () => {
    const oom = `the experiment exited with code 1${SEPARATOR}step 1\nRuntimeError: CUDA out of memory`;
    const value = `the experiment exited with code 1${SEPARATOR}step 1\nValueError: bad value`;
    const markdown = renderMarkdown(
      makeResult(2, { failures: 7, errorMessage: (i) => (i < 5 ? oom : value) }),
    );
    expect(markdown).toContain(
      "❌ `failed-run-0`: **failed** after 42 s (and 3 more like it): <code>the experiment exited with code 1</code>",
    );
    expect(markdown).toContain("❌ `failed-run-5`: **failed** after 42 s (and 1 more like it)");
    expect(markdown).toContain("⏱️ `failed-run-4`: **timeout** after 42 s: ");
    expect(markdown).toContain(
      "| 4 | failed | <code>the experiment exited with code 1 · RuntimeError: CUDA out of memory</code> | `failed-run-0`, `failed-run-1`, `failed-run-2`, … |",
    );
    expect(markdown).toContain(
      "| 1 | timeout | <code>the experiment exited with code 1 · RuntimeError: CUDA out of memory</code> | `failed-run-4` |",
    );
    expect(markdown).toContain(
      "| 2 | failed | <code>the experiment exited with code 1 · ValueError: bad value</code> | `failed-run-5`, `failed-run-6` |",
    );
    expect(count(markdown, "<details>")).toBe(3);
  });

  it("shows the StageResult's own cost estimate unless the options give one", () => {
    const result = { ...makeResult(2), estimatedCostUsd: 0.004 };
    expect(renderMarkdown(result)).toContain("estimated GPU cost **< $0.01** (estimated)");
    expect(renderMarkdown(result, { estimatedCostUsd: 1234.5 })).toContain(
      "estimated GPU cost **$1,234.50** (estimated)",
    );
    expect(renderMarkdown(makeResult(2))).not.toContain("estimated GPU cost");
  });

  it("escapes markdown and HTML in config values, names and error messages", () => {
    const result = makeResult(3, {
      failures: 1,
      errorMessage: () =>
        `exited 0 but </details><script>alert(1)</script> @octocat${SEPARATOR}\`\`\`\n</details>\n<script>alert(2)</script>\n\`\`\`\`\`\nend`,
    });
    const group = result.groups[1]!;
    group.architecture = "**bold** [link](javascript:alert(1)) <img src=x onerror=alert(3)>";
    group.params = {
      "a|b": "x | y\nnew line",
      learning_rate: "</details><script>alert(4)</script>",
      "model.num_layers": "back\\|slash",
    };
    const markdown = renderMarkdown(result, {
      notes: ["# not a heading <b>bold</b>", "- not a list"],
    });
    // Outside code blocks nothing is raw HTML or a link; inside them it is inert text.
    const prose = outsideFences(markdown);
    expect(prose).not.toMatch(/<script|<img|<b>|(?<!\\)\]\(javascript/i);
    expect(prose).not.toContain("**bold**");
    expect(count(prose, "<details>")).toBe(1);
    expect(count(prose, "</details>")).toBe(1);
    expectWellFormed(markdown);
    // Every row of every table has as many cell separators as its header.
    const lines = markdown.split("\n");
    for (let i = 0; i < lines.length; i += 1) {
      if (!lines[i]!.startsWith("|") || !lines[i + 1]?.startsWith("|---")) continue;
      const pipes = unescapedPipes(lines[i]!);
      for (let j = i + 1; j < lines.length && lines[j]!.startsWith("|"); j += 1) {
        expect(unescapedPipes(lines[j]!), lines[j]).toBe(pipes);
      }
    }
    // The stderr tail sits in a fence longer than any backtick run in it.
    expect(markdown).toContain(
      "``````text\n```\n</details>\n<script>alert(2)</script>\n`````\nend\n``````",
    );
    // Mentions in user text stay inside code, where GitHub does not notify.
    expect(markdown).toContain(
      "<code>exited 0 but &lt;/details&gt;&lt;script&gt;alert(1)&lt;/script&gt; @octocat</code>",
    );
    expect(markdown).toContain("> \\# not a heading &lt;b&gt;bold&lt;/b&gt;");
    expect(markdown).toContain("> \\- not a list");
  });

  it("draws the chart only for 2 to 30 ranked groups", () => {
    const hasChart = (groups: number): boolean =>
      renderMarkdown(makeResult(groups)).includes("```mermaid\nxychart-beta");
    expect(hasChart(1)).toBe(false);
    expect(hasChart(2)).toBe(true);
    expect(hasChart(30)).toBe(true);
    expect(hasChart(31)).toBe(false);
  });

  it("writes chart values as plain decimals, scaling tiny ones", () => {
    const result = makeResult(3);
    result.bestGroup = null;
    result.groups.forEach((group, i) => {
      group.metrics["val_loss"] = { n: 3, mean: (i + 1) * 1.5e-7, std: 1e-8, min: 0, max: 1 };
    });
    const chart = /```mermaid\n([\s\S]*?)\n```/.exec(renderMarkdown(result))![1]!;
    expect(chart).toContain('x-axis "rank" ["#1", "#2", "#3"]');
    expect(chart).toContain('y-axis "val_loss (x 1e-7)" 1.2 --> 4.8');
    expect(chart).toMatch(/^ {4}bar \[1\.5, 3, 4\.5\]$/m);
  });

  it("keeps close chart values apart instead of rounding them together", () => {
    const result = makeResult(2);
    result.bestGroup = null;
    result.groups[0]!.metrics["val_loss"] = { n: 3, mean: 0.100012, std: 0, min: 0, max: 1 };
    result.groups[1]!.metrics["val_loss"] = { n: 3, mean: 0.100024, std: 0, min: 0, max: 1 };
    const chart = /```mermaid\n([\s\S]*?)\n```/.exec(renderMarkdown(result))![1]!;
    expect(chart).toMatch(/^ {4}bar \[0\.100012, 0\.100024\]$/m);
    expect(chart).toContain('y-axis "val_loss" 0.1000108 --> 0.1000252');
  });

  it("refuses a marker that would end the hidden comment, and a non-http run link", () => {
    expect(() => renderMarkdown(makeResult(1), { marker: "a --> b" })).toThrow(/\[report\] marker/);
    expect(() => renderMarkdown(makeResult(1), { runUrl: "javascript:alert(1)" })).toThrow(
      /\[report\] runUrl/,
    );
    expect(() => renderMarkdown(makeResult(1), { maxChars: 10 })).toThrow(/\[report\] maxChars/);
    expect(
      renderMarkdown(makeResult(1), { marker: "<!-- sticky -->" }).startsWith("<!-- sticky -->\n"),
    ).toBe(true);
  });

  it("falls back to the best single run for results without groups (the original module's files)", () => {
    const result = {
      ...makeResult(0),
      bestConfig: { model: { num_layers: 4 }, learning_rate: 0.001 },
      bestMetrics: { val_loss: 0.25 },
      bestRun: "run-7",
    };
    const markdown = renderMarkdown(result);
    expect(markdown).toContain("Best single run `run-7` (no per-group statistics in this result).");
    expect(markdown).toContain("| `model.num_layers` | `4` |");
    expect(markdown).toContain("| `val_loss` | 0.25 |");
    expect(renderText(result)).toContain(
      "  model.num_layers  4\n  learning_rate     0.001\n  val_loss          0.25\n  best run          run-7",
    );
  });

  it("says there is no best configuration when no run reported the objective", () => {
    const result = makeResult(0, { failures: 2 });
    const markdown = renderMarkdown(result);
    expect(markdown).toMatch(/^## ❌ Sweep `stage1`: every run failed/);
    expect(markdown).toContain("No run reported `val_loss`, so there is no best configuration.");
  });
});

describe("renderText", () => {
  it("aligns the text report's columns", () => {
    const result = makeResult(12);
    result.groups[0]!.params["learning_rate"] = "a much longer value";
    const text = renderText(result);
    const lines = text.split("\n");
    const header = lines.findIndex((line) => /^ +# {2}architecture/.test(line));
    expect(header).toBeGreaterThan(-1);
    const table = lines.slice(header, header + 13);
    const datasetColumn = table[0]!.indexOf("dataset");
    const nEnd = table[0]!.indexOf("  n  ") + 3;
    for (const row of table.slice(1)) {
      expect(row.slice(datasetColumn, datasetColumn + "data/sbm_default".length)).toBe(
        "data/sbm_default",
      );
      expect(row.slice(nEnd - 1, nEnd)).toBe("3");
      expect(row[nEnd]).toBe(" ");
    }
    expect(table[1]).toMatch(/^ {3}1 {2}models\/gnn\/standard/);
    expect(table[12]).toMatch(/^ {2}12 {2}models\/gnn\/standard/);
  });

  it("carries the same information without markdown or chart", () => {
    const text = renderText(makeResult(5, { failures: 2 }), {
      estimatedCostUsd: 3,
      runUrl: "https://example.test/run/1",
      notes: ["cancelled by the user"],
    });
    expect(text).toMatch(/^Sweep stage1: 2 of 17 runs failed\n! cancelled by the user\n/);
    expect(text).toContain("  GPU cost      $3.00 (estimated)");
    expect(text).toContain("  commit        0123456");
    expect(text).toContain("Best configuration (val_loss, lower is better, mean ± std over seeds)");
    expect(text).toContain("  val_loss          0.1 ± 0.012 (n=3, min 0.09, max 0.11)");
    expect(text).toContain(
      "  failed-run-0  failed after 42 s: the experiment exited with code 1\n    | Traceback\n    | ValueError: bad value 0",
    );
    expect(text).toContain("Run: https://example.test/run/1");
    expect(text).not.toMatch(/```|<details>|^#|\| ---/m);
  });

  it("strips terminal escapes from user strings", () => {
    const result = makeResult(2);
    result.groups[0]!.architecture = "evil\u001b]0;title\u0007\u001b[2Jname";
    expect(renderText(result)).toContain("evilname");
    expect(renderText(result)).not.toContain("\u001b");
  });

  it("respects maxChars when given", () => {
    const text = renderText(makeResult(2_000, { failures: 300 }), { maxChars: 20_000 });
    expect(text.length).toBeLessThanOrEqual(20_000);
    expect(text).toMatch(/… [\d,]+ more groups in the full results/);
  });

  it("lists at most maxGroups groups, best first, and counts the rest", () => {
    const result = makeResult(300);
    const text = renderText(result, { maxGroups: 20 });
    const all = renderText(result);
    // Columns are as wide as the rows shown need, so compare the cells.
    const rows = (report: string): string[] =>
      report
        .split("\n")
        .filter((line) => /^ +\d+ /.test(line))
        .map((line) => line.trim().split(/ +/).join(" "));
    expect(rows(text)).toEqual(rows(all).slice(0, 20));
    expect(text).toContain("… 280 more groups in the full results");
    expect(all).not.toContain("more groups");
    expect(() => renderText(result, { maxGroups: 0 })).toThrow(
      /maxGroups must be an integer of at least 1, got 0/,
    );
  });
});

describe("renderProgressMarkdown", () => {
  it("shows the counts, the progress bar and the marker first", () => {
    const markdown = renderProgressMarkdown({
      stage: "stage1",
      total: 40,
      completed: 10,
      failed: 2,
      running: 4,
      skipped: 3,
      commitSha: "abcdef0123456789",
      runUrl: "https://example.test/run/1",
      marker: "tmgg-sweep:stage1",
      recent: [
        experiment("run-a", { metrics: { val_loss: 0.123456, test_loss: 0.2 } }),
        experiment("run-b", {
          status: "failed",
          errorMessage: `the experiment exited with code 1${SEPARATOR}boom`,
        }),
      ],
    });
    expect(
      markdown.startsWith("<!-- tmgg-sweep:stage1 -->\n## ⏳ Sweep `stage1`: 15 of 40 runs done"),
    ).toBe(true);
    expect(markdown).toContain(
      "✅ 10 completed · ❌ 2 failed · 🔄 4 running · ⏭️ 3 skipped · 🕓 21 pending",
    );
    expect(markdown).toContain("`████████░░░░░░░░░░░░` 37.5 %");
    expect(markdown).toContain("commit `abcdef0` · [workflow run](https://example.test/run/1)");
    const rows = markdown.split("\n").filter((line) => line.startsWith("| `run-"));
    expect(rows).toEqual([
      "| `run-b` | ❌ failed | 42 s | <code>the experiment exited with code 1</code> |",
      "| `run-a` | ✅ completed | 42 s | `val_loss` 0.1235, `test_loss` 0.2 |",
    ]);
  });

  it("keeps its size bounded however many results came in", () => {
    const recent = Array.from({ length: 1_000 }, (_, i) =>
      experiment(`run-${i}-${"y".repeat(500)}`, {
        status: "failed",
        errorMessage: "z".repeat(100_000),
      }),
    );
    const markdown = renderProgressMarkdown({
      stage: "s",
      total: 1_000,
      completed: 0,
      failed: 1_000,
      running: 0,
      skipped: 0,
      recent,
    });
    expect(markdown.length).toBeLessThan(8_000);
    const rows = markdown
      .split("\n")
      .filter((line) => line.startsWith("| ") && !line.startsWith("| run |"));
    expect(rows).toHaveLength(10);
    expect(rows[0]).toMatch(
      /^\| <code>run-999-y+…<\/code> \| ❌ failed \| 42 s \| <code>z+…<\/code> \|$/,
    );
  });
});
