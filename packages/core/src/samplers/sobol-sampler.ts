import type { Sampler } from "./sampler.ts";
import { compileSearchSpace, decodePoint, internalFromUnit } from "./search-space.ts";
import { SOBOL_DIRECTION_NUMBERS } from "./sobol-direction-numbers.ts";
import { RNG_STREAMS, seededRng } from "./seeded-rng.ts";

const BITS = 32;
/** Dimensions with direction numbers: the first (van der Corput) plus one per table row. */
export const SOBOL_MAX_DIMENSIONS = SOBOL_DIRECTION_NUMBERS.length + 1;

/** The 32 direction numbers of dimension `d` (0-based), as unsigned 32-bit integers. */
export function sobolDirections(d: number): Uint32Array {
  const v = new Uint32Array(BITS);
  if (d === 0) {
    for (let j = 0; j < BITS; j++) v[j] = 2 ** (BITS - 1 - j);
    return v;
  }
  const row = SOBOL_DIRECTION_NUMBERS[d - 1];
  if (row === undefined) {
    throw new Error(
      `[core] sobol sampler: no direction numbers for dimension ${d + 1} (at most ${SOBOL_MAX_DIMENSIONS}): use the random or tpe sampler`,
    );
  }
  const [poly = 1, ...m] = row;
  const s = m.length;
  const a = (poly >>> 1) & ((1 << (s - 1)) - 1);
  for (let j = 0; j < s && j < BITS; j++) v[j] = ((m[j] ?? 1) * 2 ** (BITS - 1 - j)) >>> 0;
  for (let j = s; j < BITS; j++) {
    let value = ((v[j - s] as number) ^ ((v[j - s] as number) >>> s)) >>> 0;
    for (let k = 1; k < s; k++) {
      if ((a >>> (s - 1 - k)) & 1) value = (value ^ (v[j - k] as number)) >>> 0;
    }
    v[j] = value;
  }
  return v;
}

function parity(x: number): number {
  let y = x ^ (x >>> 16);
  y ^= y >>> 8;
  y ^= y >>> 4;
  y ^= y >>> 2;
  y ^= y >>> 1;
  return y & 1;
}

interface ScrambledDimension {
  directions: Uint32Array;
  shift: number;
}

/**
 * Dimension `d`'s direction numbers under a random linear matrix scramble (a random lower
 * triangular binary matrix with a unit diagonal applied to every direction number, as
 * Matoušek's scramble) and a random digital shift, both drawn from the seed alone: the
 * scrambled sequence keeps Sobol's stratification and is unbiased.
 */
function scrambledDimension(seed: number, d: number): ScrambledDimension {
  const base = sobolDirections(d);
  const rng = seededRng(RNG_STREAMS.sobol, seed, d);
  const rows = new Uint32Array(BITS);
  for (let r = 0; r < BITS; r++) {
    const diagonal = 2 ** (BITS - 1 - r);
    const above = (2 ** BITS - 2 * diagonal) >>> 0;
    rows[r] = ((rng.next() & above) | diagonal) >>> 0;
  }
  const directions = new Uint32Array(BITS);
  for (let j = 0; j < BITS; j++) {
    let out = 0;
    for (let r = 0; r < BITS; r++) {
      if (parity(((rows[r] as number) & (base[j] as number)) >>> 0)) out += 2 ** (BITS - 1 - r);
    }
    directions[j] = out;
  }
  return { directions, shift: rng.next() >>> 0 };
}

/**
 * Point `index` (0-based, in Gray-code order as scipy's `Sobol(scramble=False)`) of the Sobol
 * sequence in [0, 1)^d with the given dimensions' direction numbers and digital shifts
 * (`plainSobolDimensions` for the unscrambled sequence).
 */
export function sobolPoint(
  index: number,
  dimensions: readonly { directions: Uint32Array; shift: number }[],
): number[] {
  if (!Number.isInteger(index) || index < 0 || index >= 2 ** BITS) {
    throw new Error(
      `[core] sobol sampler: point index must be an integer in [0, 2^32), got ${index}`,
    );
  }
  const gray = (index ^ (index >>> 1)) >>> 0;
  return dimensions.map(({ directions, shift }) => {
    let x = shift;
    for (let j = 0; j < BITS; j++) {
      if ((gray >>> j) & 1) x = (x ^ (directions[j] as number)) >>> 0;
    }
    return x / 2 ** BITS;
  });
}

/** Unscrambled dimensions 0 … count − 1 (for checks against published sequences). */
export function plainSobolDimensions(count: number): { directions: Uint32Array; shift: number }[] {
  return Array.from({ length: count }, (_, d) => ({ directions: sobolDirections(d), shift: 0 }));
}

/**
 * Quasi-random search: trial n gets point n of a Sobol sequence scrambled by the seed, so the
 * first 2^k trials cover the space evenly. Parameters take dimensions in name order.
 */
export function createSobolSampler(options: { seed: number }): Sampler {
  const scrambled: ScrambledDimension[] = [];
  const dimension = (d: number): ScrambledDimension => {
    scrambled[d] ??= scrambledDimension(options.seed, d);
    return scrambled[d];
  };
  return {
    suggest(space, _trials, trialNumber) {
      const dims = compileSearchSpace(space);
      if (dims.length > SOBOL_MAX_DIMENSIONS) {
        throw new Error(
          `[core] sobol sampler: ${dims.length} parameters, at most ${SOBOL_MAX_DIMENSIONS} are supported: use the random or tpe sampler`,
        );
      }
      const point = sobolPoint(
        trialNumber,
        dims.map((_, d) => dimension(d)),
      );
      return decodePoint(
        space,
        dims,
        dims.map((dim, d) => internalFromUnit(dim, point[d] as number)),
      );
    },
  };
}
