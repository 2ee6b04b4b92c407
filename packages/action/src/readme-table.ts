/**
 * The README's table of the action's inputs and outputs, generated from action.yml
 * (`npm run readme -w packages/action` rewrites it; a test fails when it is stale).
 */
import { parse } from "yaml";

export const TABLE_START =
  "<!-- action-inputs:start (generated from action.yml: npm run readme -w packages/action) -->";
export const TABLE_END = "<!-- action-inputs:end -->";

interface ActionYml {
  inputs?: Record<string, { description?: string; default?: string; required?: boolean }>;
  outputs?: Record<string, { description?: string }>;
}

function cell(text: string): string {
  return text.replace(/\s+/g, " ").trim().replace(/\|/g, "\\|");
}

/** Markdown tables of the inputs (with defaults) and outputs in `action.yml`. */
export function renderActionTables(actionYml: string): string {
  const action = parse(actionYml) as ActionYml;
  const inputs = Object.entries(action.inputs ?? {}).map(([name, input]) => {
    const fallback = input.default === undefined ? "" : `\`${cell(String(input.default))}\``;
    return `| \`${name}\` | ${cell(input.description ?? "")} | ${fallback} |`;
  });
  const outputs = Object.entries(action.outputs ?? {}).map(
    ([name, output]) => `| \`${name}\` | ${cell(output.description ?? "")} |`,
  );
  return [
    "| input | description | default |",
    "| --- | --- | --- |",
    ...inputs,
    "",
    "| output | description |",
    "| --- | --- |",
    ...outputs,
  ].join("\n");
}

/** The README with the text between the table markers replaced by `tables`. */
export function updateReadme(readme: string, tables: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start === -1 || end < start) {
    throw new Error(
      `[action] README.md has no table markers; put ${TABLE_START} and ${TABLE_END} in its action section`,
    );
  }
  return `${readme.slice(0, start + TABLE_START.length)}\n${tables}\n${readme.slice(end)}`;
}
