export { LocalRunner, createLocalRunner } from "./local-runner.ts";
export type { LocalRunnerOptions } from "./local-runner.ts";
export { GpuSlots, detectGpus } from "./gpu-slots.ts";
export type { GpuRequest } from "./gpu-slots.ts";
