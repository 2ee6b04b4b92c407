// Seeded randomness: the same seed and stream name always give the same numbers, so a
// run's metrics depend on its config alone.

/** A 32-bit hash of a seed and a stream name (FNV-1a, then a final avalanche). */
function hashSeed(seed, stream) {
  let h = 0x811c9dc5;
  for (const ch of `${seed}/${stream}`) {
    h ^= ch.codePointAt(0);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/**
 * A PRNG (mulberry32) for one purpose of one run: `createRng(seed, "init")` draws the
 * initial weights, `createRng(seed, "split")` the data split, and so on, so changing how
 * many numbers one purpose draws never shifts another.
 */
export function createRng(seed, stream) {
  let state = hashSeed(seed, stream);
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    /** A number in [0, 1). */
    uniform,
    /** A standard normal number (Box-Muller). */
    normal() {
      const u = 1 - uniform();
      const v = uniform();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    },
    /** Shuffles an array in place (Fisher-Yates) and returns it. */
    shuffle(items) {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(uniform() * (i + 1));
        [items[i], items[j]] = [items[j], items[i]];
      }
      return items;
    },
  };
}
