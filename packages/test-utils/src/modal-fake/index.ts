export { FAKE_MODAL_GPU_TYPES, FakeModal, GENERIC_STATUS, startFakeModal } from "./fake-modal.ts";
export type { FakeModalOptions, FakeSandbox, RecordedCall } from "./fake-modal.ts";
