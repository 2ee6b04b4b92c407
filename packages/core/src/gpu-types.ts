/** GPU names Modal accepts (`TYPE[:N]`), as it lists them. */
export const MODAL_GPU_NAMES = [
  "T4",
  "L4",
  "A10",
  "A10G",
  "L40S",
  "A100",
  "A100-40GB",
  "A100-80GB",
  "RTX-PRO-6000",
  "H100",
  "H100!",
  "H200",
  "B200",
  "B200+",
] as const;

/** The original module's GPU tiers and the Modal GPU each stands for. */
export const GPU_TIERS: Readonly<Record<string, string>> = Object.freeze({
  standard: "A10G",
  debug: "T4",
  fast: "A100-40GB",
  multi: "A100:2",
  h100: "H100",
});

/** Every `gpu_type` a stage may name (a tier, `cpu`, or a Modal GPU), before any `:N`. */
export const GPU_TYPES: readonly string[] = Object.freeze([
  ...Object.keys(GPU_TIERS),
  "cpu",
  ...MODAL_GPU_NAMES,
]);
