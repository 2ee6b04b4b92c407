export { createSampler, samplerKinds } from "./sampler.ts";
export type { Sampler, SamplerKind, SamplerOptions, TrialRecord } from "./sampler.ts";
export { searchSpaceFromStage } from "./search-space.ts";
export type { ParamSpec, SearchSpace } from "./search-space.ts";
export { TPE_DEFAULTS, createTpeSampler, optunaTpeSettings } from "./tpe-sampler.ts";
export type { TpeSamplerOptions, TpeSettings } from "./tpe-sampler.ts";
