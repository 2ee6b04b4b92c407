// Regenerates the action's inputs/outputs table in README.md from action.yml.
// Run: npm run readme -w packages/action  (node >= 22.18 runs this TypeScript as is).
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderActionTables, updateReadme } from "../packages/action/src/readme-table.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const readmePath = path.join(root, "README.md");
const readme = await readFile(readmePath, "utf8");
const next = updateReadme(readme, renderActionTables(await readFile(path.join(root, "action.yml"), "utf8")));
if (next === readme) {
  console.log("README.md: the action table is up to date");
} else {
  await writeFile(readmePath, next);
  console.log("README.md: the action table was regenerated from action.yml");
}
