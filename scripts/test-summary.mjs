#!/usr/bin/env node
// Sums every package's vitest JSON report (packages/*/test-results.json, written by each
// package's `test` script) into one closing line: "tests: N passed, N failed, N skipped".
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
for (const name of (await readdir(path.join(root, "packages"))).sort()) {
  const file = path.join(root, "packages", name, "test-results.json");
  let report;
  try {
    report = JSON.parse(await readFile(file, "utf8"));
  } catch {
    missing.push(name);
    continue;
  }
  passed += report.numPassedTests ?? 0;
  failed += (report.numFailedTests ?? 0) + (report.numRuntimeErrorTestSuites ?? 0) + (report.numFailedTestSuites ?? 0);
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  console.log(`${name}: ${report.numPassedTests ?? 0} passed, ${report.numFailedTests ?? 0} failed, ${report.numPendingTests ?? 0} skipped`);
}
if (missing.length) console.log(`no test report from: ${missing.join(", ")}`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
