export { FakeRunner } from "./fake-runner.ts";
export type { FakeBehaviour, FakeRunnerOptions } from "./fake-runner.ts";
