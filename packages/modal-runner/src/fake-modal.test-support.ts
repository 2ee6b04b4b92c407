/**
 * Test rig: a fake Modal on 127.0.0.1, the SDK's env pointed at it, a temp project
 * holding the fixture experiment, and runners wired to both. Not part of the build.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  EXPERIMENT_FIXTURE,
  startFakeModal,
  type FakeModal,
  type FakeModalOptions,
} from "@tmgg/test-utils";
import { ModalRunner, type ModalRunnerOptions } from "./modal-runner.ts";

export const FIXTURE_NAME = "experiment-fixture.ts";

export interface FakeModalRig extends AsyncDisposable {
  fake: FakeModal;
  /** A temp project: the fixture experiment and nothing else. */
  projectRoot: string;
  cacheDir: string;
  /** argv that runs the fixture inside a (fake) sandbox. */
  command: readonly string[];
  /** A runner against the fake, with fast test settings under `options`. */
  runner(options?: ModalRunnerOptions): ModalRunner;
  close(): Promise<void>;
}

const ENV_KEYS = [
  "MODAL_SERVER_URL",
  "MODAL_TOKEN_ID",
  "MODAL_TOKEN_SECRET",
  "MODAL_CONFIG_PATH",
  "MODAL_PROFILE",
];

/** Starts the rig; `close()` (or `await using`) stops the fake, restores the env and removes temp files. */
export async function startFakeModalRig(options: FakeModalOptions = {}): Promise<FakeModalRig> {
  const dir = mkdtempSync(path.join(tmpdir(), "modal-runner-test-"));
  const projectRoot = path.join(dir, "project");
  const cacheDir = path.join(dir, "cache");
  mkdirSync(projectRoot);
  copyFileSync(EXPERIMENT_FIXTURE, path.join(projectRoot, FIXTURE_NAME));
  const fake = await startFakeModal(options);
  const saved = Object.fromEntries(ENV_KEYS.map((key) => [key, process.env[key]]));
  Object.assign(process.env, fake.env(), { MODAL_CONFIG_PATH: path.join(dir, "no-modal.toml") });
  delete process.env["MODAL_PROFILE"];
  const runners: ModalRunner[] = [];
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.all(runners.map((runner) => runner.close()));
    await fake.close();
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    fake,
    projectRoot,
    cacheDir,
    command: [process.execPath, FIXTURE_NAME],
    runner(runnerOptions = {}) {
      const runner = new ModalRunner({
        cacheDir,
        logLevel: "error",
        infraRetryDelayMs: 10,
        progressIntervalMs: 100,
        ...runnerOptions,
      });
      runners.push(runner);
      return runner;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
