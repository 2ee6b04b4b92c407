import type { Sampler } from "./sampler.ts";
import { compileSearchSpace, decodePoint, internalFromUnit } from "./search-space.ts";
import type { SearchSpace } from "./search-space.ts";
import { RNG_STREAMS, seededRng, uniform } from "./seeded-rng.ts";

/** Internal coordinates of a uniform random point (log-uniform in log dimensions). */
export function randomInternalPoint(
  space: SearchSpace,
  seed: number,
  trialNumber: number,
): number[] {
  const rng = seededRng(RNG_STREAMS.random, seed, trialNumber);
  return compileSearchSpace(space).map((dim) => internalFromUnit(dim, uniform(rng)));
}

/** Uniform random search: each trial's point depends only on the seed and the trial number. */
export function createRandomSampler(options: { seed: number }): Sampler {
  return {
    suggest(space, _trials, trialNumber) {
      const dims = compileSearchSpace(space);
      return decodePoint(space, dims, randomInternalPoint(space, options.seed, trialNumber));
    },
  };
}
