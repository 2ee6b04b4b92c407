/**
 * The `/sweep` command, parsed from the first line of a comment in JavaScript. The body
 * never reaches a shell: the tokens become data (a stage name matched against the files
 * that exist, `key=value` overrides validated by core), never argv.
 */

/** What a `/sweep` comment asks for. */
export type SweepCommand =
  | { kind: "help" }
  | { kind: "list" }
  | {
      kind: "run";
      stage: string;
      /** `key=value` tokens, as typed; core validates them against the stage. */
      overrides: string[];
      isDryRun: boolean;
      isFresh: boolean;
    }
  | { kind: "invalid"; reason: string };

/** Longest first line read; a longer line is refused rather than parsed. */
const MAX_LINE_CHARS = 2_000;
const COMMAND = /^\/sweep(?=\s|$)/;

/** True when the comment's first line is a `/sweep` command (the rest of the body is ignored). */
export function isSweepComment(body: string): boolean {
  return COMMAND.test(firstLine(body));
}

function firstLine(body: string): string {
  const newline = body.search(/\r?\n/);
  return (newline === -1 ? body : body.slice(0, newline)).trim();
}

/**
 * Parses `/sweep <stage> [key=value …] [--dry-run] [--fresh]`, `/sweep help` and
 * `/sweep list`; null when the first line is not a `/sweep` command.
 *
 * @example
 * parseSweepCommand("/sweep stage1 seeds=1,2 --dry-run")
 * // { kind: "run", stage: "stage1", overrides: ["seeds=1,2"], isDryRun: true, isFresh: false }
 */
export function parseSweepCommand(body: string): SweepCommand | null {
  const line = firstLine(body);
  if (!COMMAND.test(line)) return null;
  if (line.length > MAX_LINE_CHARS) {
    return { kind: "invalid", reason: `the command line is over ${MAX_LINE_CHARS} characters` };
  }
  const tokens = line.slice("/sweep".length).trim().split(/\s+/).filter(Boolean);
  const [first, ...rest] = tokens;
  if (first === undefined) return { kind: "invalid", reason: "it names no stage" };
  if (first === "help" || first === "--help") {
    return rest.length === 0
      ? { kind: "help" }
      : { kind: "invalid", reason: "`help` takes no arguments" };
  }
  if (first === "list") {
    return rest.length === 0
      ? { kind: "list" }
      : { kind: "invalid", reason: "`list` takes no arguments" };
  }
  if (first.startsWith("-"))
    return { kind: "invalid", reason: `it starts with the flag ${first} instead of a stage name` };
  const overrides: string[] = [];
  let isDryRun = false;
  let isFresh = false;
  for (const token of rest) {
    if (token === "--dry-run") isDryRun = true;
    else if (token === "--fresh") isFresh = true;
    else if (token.startsWith("-"))
      return { kind: "invalid", reason: `unknown flag ${token} (flags: --dry-run, --fresh)` };
    else if (token.includes("=")) overrides.push(token);
    else
      return {
        kind: "invalid",
        reason: `unexpected word ${token}: give one stage, then key=value overrides`,
      };
  }
  return { kind: "run", stage: first, overrides, isDryRun, isFresh };
}
