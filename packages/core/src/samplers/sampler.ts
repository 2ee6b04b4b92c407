import { createRandomSampler } from "./random-sampler.ts";
import type { SearchSpace } from "./search-space.ts";
import { createSobolSampler } from "./sobol-sampler.ts";
import { createTpeSampler } from "./tpe-sampler.ts";

/**
 * A trial of a study as the sampler sees it. `value` is the objective as measured (the mean
 * over seeds) of a complete trial; the sampler applies the direction.
 */
export interface TrialRecord {
  number: number;
  params: Record<string, unknown>;
  state: "complete" | "running" | "failed";
  value?: number;
}

/**
 * Suggests the parameters of a trial. `suggest` is a pure function of the sampler's seed,
 * the space, the trials so far (in any order; a record carrying the asked trial's own number
 * is ignored) and the trial number, so a resumed study replays the same suggestions.
 */
export interface Sampler {
  suggest(
    space: SearchSpace,
    trials: readonly TrialRecord[],
    trialNumber: number,
  ): Record<string, unknown>;
}

export const samplerKinds = ["random", "sobol", "tpe"] as const;
export type SamplerKind = (typeof samplerKinds)[number];

export interface SamplerOptions {
  /** Any safe integer; the same seed replays the same study. */
  seed: number;
  direction: "minimize" | "maximize";
  /** TPE only: model the parameters jointly rather than one by one (default true). */
  multivariate?: boolean;
  /** TPE only: complete trials sampled at random before the model takes over (default 10). */
  nStartupTrials?: number;
  /** TPE only: count trials in flight as bad so parallel suggestions spread out (default true). */
  constantLiar?: boolean;
}

/**
 * The sampler of a study: `random` (uniform, log-uniform for log parameters), `sobol`
 * (a scrambled Sobol sequence) or `tpe` (Optuna's tree-structured Parzen estimator with a
 * constant liar for trials in flight).
 *
 * @example
 * const sampler = createSampler("tpe", { seed: 1, direction: "minimize" });
 * const params = sampler.suggest({ lr: { kind: "float", low: 1e-5, high: 1e-1, log: true } }, [], 0);
 */
export function createSampler(kind: SamplerKind, options: SamplerOptions): Sampler {
  if (!Number.isSafeInteger(options.seed)) {
    throw new Error(`[core] sampler: seed must be an integer, got ${options.seed}`);
  }
  if (options.direction !== "minimize" && options.direction !== "maximize") {
    throw new Error(
      `[core] sampler: direction must be "minimize" or "maximize", got ${String(options.direction)}`,
    );
  }
  switch (kind) {
    case "random":
      return createRandomSampler({ seed: options.seed });
    case "sobol":
      return createSobolSampler({ seed: options.seed });
    case "tpe":
      return createTpeSampler({
        seed: options.seed,
        direction: options.direction,
        multivariate: options.multivariate ?? true,
        nStartupTrials: options.nStartupTrials ?? 10,
        constantLiar: options.constantLiar ?? true,
      });
    default:
      throw new Error(
        `[core] unknown sampler "${String(kind)}": use one of ${samplerKinds.join(", ")}`,
      );
  }
}
