import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plusFromState } from "pure-rand/generator/xoroshiro128plus";
import type { RandomGenerator } from "pure-rand/types/RandomGenerator";

export type { RandomGenerator };

/** Streams of randomness, so that samplers sharing a seed do not share draws by accident. */
export const RNG_STREAMS = { random: 1, sobol: 2, tpe: 3 } as const;

/** murmur3's 32-bit finalizer: a bijective avalanche mix. */
function fmix32(value: number): number {
  let h = value | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/**
 * A generator that is a pure function of its inputs: the state is a hash of
 * (stream, seed, index). Samplers derive one per suggestion from (seed, trial number), so a
 * resumed study replays the same suggestions whatever was asked before.
 */
export function seededRng(stream: number, seed: number, index: number): RandomGenerator {
  const seedLow = seed >>> 0;
  const seedHigh = Math.floor(seed / 2 ** 32) >>> 0;
  let h = fmix32(stream ^ 0x9e3779b9);
  h = fmix32(h ^ seedLow);
  h = fmix32(h ^ Math.imul(seedHigh, 0x27d4eb2f));
  h = fmix32(h ^ Math.imul(index | 0, 0x165667b1));
  h = fmix32(h ^ Math.floor(index / 2 ** 32));
  const state = [0, 1, 2, 3].map((i) => fmix32(h + Math.imul(i + 1, 0x9e3779b9)));
  if (state.reduce((acc, word) => acc | word, 0) === 0) state[0] = 1;
  return xoroshiro128plusFromState(state);
}

/** A uniform double in [0, 1). */
export function uniform(rng: RandomGenerator): number {
  return uniformFloat64(rng);
}
