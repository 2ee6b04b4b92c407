import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { EXPERIMENT_FIXTURE, runnerContract } from "@tmgg/test-utils";
import { LocalRunner } from "./local-runner.ts";

const fixtureCommand = (): readonly string[] => [process.execPath, EXPERIMENT_FIXTURE];

runnerContract("LocalRunner on CPU", async () => {
  const outputDir = await mkdtemp(path.join(tmpdir(), "local-runner-contract-"));
  return {
    runner: new LocalRunner({ outputDir, gpus: [], killGraceMs: 1000, progressIntervalMs: 20 }),
    command: fixtureCommand,
    hasLogs: true,
    cleanup: () => rm(outputDir, { recursive: true, force: true }),
  };
});

runnerContract("LocalRunner with 2 GPU slots", async () => {
  const outputDir = await mkdtemp(path.join(tmpdir(), "local-runner-contract-"));
  return {
    runner: new LocalRunner({ outputDir, gpus: [0, 1], killGraceMs: 1000, progressIntervalMs: 20 }),
    command: fixtureCommand,
    slots: 2,
    hasLogs: true,
    cleanup: () => rm(outputDir, { recursive: true, force: true }),
  };
});
