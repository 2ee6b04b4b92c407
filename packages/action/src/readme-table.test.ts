import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { TABLE_END, TABLE_START, renderActionTables, updateReadme } from "./readme-table.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

describe("the README's inputs and outputs table", () => {
  it("is what action.yml generates (run npm run readme -w packages/action when this fails)", async () => {
    const readme = await readFile(path.join(ROOT, "README.md"), "utf8");
    const tables = renderActionTables(await readFile(path.join(ROOT, "action.yml"), "utf8"));
    expect(readme.indexOf("<!-- action:start -->")).toBeLessThan(readme.indexOf(TABLE_START));
    expect(readme.indexOf(TABLE_END)).toBeLessThan(readme.indexOf("<!-- action:end -->"));
    expect(updateReadme(readme, tables)).toBe(readme);
  });

  it("lists every input with its default and every output, escaping pipes", () => {
    const tables = renderActionTables(`inputs:
  backend:
    description: local | modal
    default: local
  stage:
    description: The stage.
outputs:
  best-config:
    description: JSON.
`);
    expect(tables).toContain("| `backend` | local \\| modal | `local` |");
    expect(tables).toContain("| `stage` | The stage. |  |");
    expect(tables).toContain("| `best-config` | JSON. |");
    expect(() => updateReadme("no markers", tables)).toThrow(/no table markers/);
  });
});
