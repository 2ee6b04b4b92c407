export { ModalCredentialsError, modalConfigPath, resolveModalCredentials } from "./credentials.ts";
export type { CredentialOptions, ModalCredentials } from "./credentials.ts";
export { GPU_TIERS, MODAL_GPU_NAMES, modalGpu } from "./gpu-type.ts";
export { InfrastructureError, describeInfrastructureFailure } from "./infrastructure-error.ts";
export type { InfrastructureFailure } from "./infrastructure-error.ts";
export { DEFAULT_IMAGE, ModalRunner, createModalRunner } from "./modal-runner.ts";
export type { ModalRunnerOptions, SandboxEvent } from "./modal-runner.ts";
export {
  DEFAULT_MAX_UPLOAD_BYTES,
  DEFAULT_UPLOAD_IGNORE,
  ignoreMatcher,
  packProject,
} from "./project-tarball.ts";
export type { PackOptions, PackedProject } from "./project-tarball.ts";
export { terminateSandboxes } from "./terminate-sandboxes.ts";
export type { TerminateSandboxesOptions, TerminateSandboxesReport } from "./terminate-sandboxes.ts";
