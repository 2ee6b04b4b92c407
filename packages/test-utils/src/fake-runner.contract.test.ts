import { FakeRunner } from "./fake-runner.ts";
import { runnerContract } from "./runner-contract.ts";

runnerContract("FakeRunner", () =>
  Promise.resolve({
    runner: new FakeRunner(),
    command: () => ["fake-experiment"],
    cleanup: () => Promise.resolve(),
  }),
);

runnerContract("FakeRunner with 2 slots", () =>
  Promise.resolve({
    runner: new FakeRunner({ slots: 2 }),
    command: () => ["fake-experiment"],
    slots: 2,
    cleanup: () => Promise.resolve(),
  }),
);
