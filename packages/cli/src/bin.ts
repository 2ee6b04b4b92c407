#!/usr/bin/env node
import { setFlagsFromString } from "node:v8";

// The coordinator is long-lived and allocates briskly but holds little: V8's size-first
// heap policy keeps its resident memory about a third lower at the same speed
// (bench/local-overhead.mjs). Set before the rest of the program loads.
setFlagsFromString("--optimize-for-size");
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv.slice(2));
