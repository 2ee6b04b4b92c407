import { runnerContract } from "@tmgg/test-utils";
import { startFakeModalRig } from "./fake-modal.test-support.ts";

runnerContract("ModalRunner against the fake Modal control plane", async () => {
  const rig = await startFakeModalRig();
  return {
    runner: rig.runner({ downloadCheckpoints: true }),
    command: () => rig.command,
    projectRoot: rig.projectRoot,
    hasLogs: true,
    cleanup: async () => {
      try {
        // However each run ended, its sandbox got a SandboxTerminate.
        rig.fake.assertAllTerminated();
        rig.fake.assertExhausted();
      } finally {
        await rig.close();
      }
    },
  };
});
