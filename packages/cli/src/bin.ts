#!/usr/bin/env node
import { setFlagsFromString } from "node:v8";

// The coordinator is long-lived and allocates briskly but holds little: V8's size-first
// heap policy keeps its resident memory about a third lower at the same speed, and not
// growing the young generation past its first size (1 MiB) spares the ~30 MiB it grows by
// in each burst of a large stage (reading, planning, aggregating), again at the same speed
// (bench/local-overhead.mjs: 10,000 runs peak at ~125 MiB instead of ~136). Both are read
// as the heap runs, so they work when set here, before the rest of the program loads.
setFlagsFromString("--optimize-for-size");
setFlagsFromString("--semi-space-growth-factor=1");
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv.slice(2));
