export { FAKE_BEHAVIOUR_KEY, FakeRunner } from "./fake-runner.ts";
export type { FakeBehaviour, FakeRunnerOptions } from "./fake-runner.ts";
export { EXPERIMENT_FIXTURE, runnerContract, waitFor } from "./runner-contract.ts";
export type { RunnerContractContext } from "./runner-contract.ts";
export { storageContract } from "./storage-contract.ts";
export type { StorageContractOptions, StorageUnderTest } from "./storage-contract.ts";
export {
  FAKE_MODAL_GPU_TYPES,
  FakeModal,
  GENERIC_STATUS,
  startFakeModal,
  type FakeModalOptions,
  type FakeSandbox,
  type RecordedCall,
} from "./modal-fake/index.ts";
