import { discreteZ, snapToGrid } from "./search-space.ts";
import type { CategoricalDimension, Dimension } from "./search-space.ts";
import type { RandomGenerator } from "./seeded-rng.ts";
import { uniform } from "./seeded-rng.ts";
import { logGaussMass, normLogPdf, truncNormPpf } from "./truncated-normal.ts";

/** Observations newer than this keep weight 1; older ones ramp down linearly (Optuna's default). */
const FLAT_WEIGHT_COUNT = 25;

/**
 * Optuna's default observation weights, oldest first: 1 for the newest 25, and for the
 * n − 25 older ones a linear ramp from 1/n up to 1.
 */
export function defaultWeights(n: number): number[] {
  if (n < FLAT_WEIGHT_COUNT) return Array.from({ length: n }, () => 1);
  const rampCount = n - FLAT_WEIGHT_COUNT;
  const ramp = Array.from({ length: rampCount }, (_, i) =>
    rampCount === 1 ? 1 / n : 1 / n + (i * (1 - 1 / n)) / (rampCount - 1),
  );
  return [...ramp, ...Array.from({ length: FLAT_WEIGHT_COUNT }, () => 1)];
}

/**
 * How kernel widths are chosen: "neighbour-gap", per dimension the larger gap to the sorted
 * neighbours (Optuna's univariate rule); "scott", 0.2·n^(−1/(d+4)) of the range (Optuna's
 * multivariate rule). Both are then clipped to [range / min(100, n + 2), range].
 */
export type BandwidthRule = "neighbour-gap" | "scott";

export interface ParzenEstimatorOptions {
  /** Weight of the prior kernel relative to an observation of weight 1. */
  priorWeight: number;
  bandwidth: BandwidthRule;
  /** The d of the "scott" rule: the size of the whole search space. */
  dimensionCount: number;
}

interface NumericKernels {
  type: "numeric";
  mus: Float64Array;
  sigmas: Float64Array;
  /** log P(zLow ≤ X ≤ zHigh) of each kernel: its truncation normalizer. */
  logMass: Float64Array;
  /** Standardized bounds of each kernel. */
  a: Float64Array;
  b: Float64Array;
}

interface CategoricalKernels {
  type: "categorical";
  /** Per kernel, the log probability of each choice. */
  logProbs: Float64Array[];
  /** Per kernel, the cumulative probabilities (for sampling). */
  cumulative: Float64Array[];
}

/**
 * The kernel widths of one dimension's observations `mus` in [zLow, zHigh]. "neighbour-gap":
 * for each observation the larger gap to its sorted neighbours, the prior's centre counted
 * among them and the range's ends not (Optuna's consider_endpoints=False); "scott":
 * 0.2·n^(−1/(d+4)) of the range. Then the magic clip to [range / min(100, n + 2), range].
 */
export function kernelBandwidths(
  mus: readonly number[],
  zLow: number,
  zHigh: number,
  options: { bandwidth: BandwidthRule; dimensionCount: number },
): number[] {
  const n = mus.length;
  const range = zHigh - zLow;
  let sigmas: number[];
  if (options.bandwidth === "scott") {
    const sigma = 0.2 * Math.max(n, 1) ** (-1 / (options.dimensionCount + 4)) * range;
    sigmas = mus.map(() => sigma);
  } else {
    const withPrior = [...mus, 0.5 * (zLow + zHigh)];
    const order = withPrior
      .map((_, i) => i)
      .sort((i, j) => (withPrior[i] as number) - (withPrior[j] as number));
    const sorted = [zLow, ...order.map((i) => withPrior[i] as number), zHigh];
    const sortedSigmas = order.map((_, k) =>
      Math.max(
        (sorted[k + 1] as number) - (sorted[k] as number),
        (sorted[k + 2] as number) - (sorted[k + 1] as number),
      ),
    );
    if (sorted.length >= 4) {
      // consider_endpoints=False: the outermost kernels ignore the gap to the range's ends.
      sortedSigmas[0] = (sorted[2] as number) - (sorted[1] as number);
      sortedSigmas[sortedSigmas.length - 1] =
        (sorted[sorted.length - 2] as number) - (sorted[sorted.length - 3] as number);
    }
    const byObservation = new Array<number>(withPrior.length);
    order.forEach((i, k) => (byObservation[i] = sortedSigmas[k] as number));
    sigmas = byObservation.slice(0, n);
  }
  const minSigma = range / Math.min(100, n + 2);
  return sigmas.map((s) => Math.min(Math.max(s, minSigma), range));
}

function numericKernels(
  dim: Exclude<Dimension, CategoricalDimension>,
  column: readonly number[],
  options: ParzenEstimatorOptions,
): NumericKernels {
  const mus = column.map((v) => (dim.type === "discrete" ? discreteZ(dim, v) : v));
  const sigmas = kernelBandwidths(mus, dim.zLow, dim.zHigh, options);
  mus.push(0.5 * (dim.zLow + dim.zHigh));
  sigmas.push(dim.zHigh - dim.zLow);
  const kernels: NumericKernels = {
    type: "numeric",
    mus: Float64Array.from(mus),
    sigmas: Float64Array.from(sigmas),
    logMass: new Float64Array(mus.length),
    a: new Float64Array(mus.length),
    b: new Float64Array(mus.length),
  };
  for (let j = 0; j < mus.length; j++) {
    const mu = mus[j] as number;
    const sigma = sigmas[j] as number;
    kernels.a[j] = (dim.zLow - mu) / sigma;
    kernels.b[j] = (dim.zHigh - mu) / sigma;
    kernels.logMass[j] = logGaussMass(kernels.a[j] as number, kernels.b[j] as number);
  }
  return kernels;
}

function categoricalKernels(
  dim: CategoricalDimension,
  column: readonly number[],
  priorWeight: number,
): CategoricalKernels {
  const choiceCount = dim.choices.length;
  const kernelCount = column.length + 1;
  const rows: number[][] = [];
  for (const observed of column) {
    const row = Array.from({ length: choiceCount }, () => priorWeight / kernelCount);
    row[observed] = (row[observed] as number) + 1;
    rows.push(row);
  }
  rows.push(Array.from({ length: choiceCount }, () => 1));
  const logProbs: Float64Array[] = [];
  const cumulative: Float64Array[] = [];
  for (const row of rows) {
    const total = row.reduce((sum, w) => sum + w, 0);
    logProbs.push(Float64Array.from(row, (w) => Math.log(w / total)));
    let running = 0;
    cumulative.push(Float64Array.from(row, (w) => (running += w / total)));
  }
  return { type: "categorical", logProbs, cumulative };
}

function pickIndex(cumulative: ArrayLike<number>, u: number): number {
  const last = cumulative.length - 1;
  for (let i = 0; i < last; i++) if (u < (cumulative[i] as number)) return i;
  return last;
}

/**
 * A Parzen estimator over some dimensions: a mixture, with one kernel per observation plus a
 * prior kernel, of products of per-dimension kernels (truncated normals in z space, discretized
 * to the grid for discrete dimensions; smoothed one-hot rows for categoricals).
 *
 * Points are internal coordinates (see `encodeValue`): z, grid index or choice index.
 */
export class ParzenEstimator {
  readonly #dims: readonly Dimension[];
  readonly #kernels: (NumericKernels | CategoricalKernels)[];
  readonly #logWeights: Float64Array;
  readonly #cumulativeWeights: Float64Array;

  /**
   * @param observations one point per observation, oldest first
   * @param observationWeights a factor per observation on Optuna's default (age) weights
   */
  constructor(
    dims: readonly Dimension[],
    observations: readonly (readonly number[])[],
    options: ParzenEstimatorOptions,
    observationWeights?: readonly number[],
  ) {
    this.#dims = dims;
    const ageWeights = defaultWeights(observations.length);
    const weights =
      observations.length === 0
        ? [1]
        : [...ageWeights.map((w, i) => w * (observationWeights?.[i] ?? 1)), options.priorWeight];
    const total = weights.reduce((sum, w) => sum + w, 0);
    this.#logWeights = Float64Array.from(weights, (w) => Math.log(w / total));
    let running = 0;
    this.#cumulativeWeights = Float64Array.from(weights, (w) => (running += w / total));
    this.#kernels = dims.map((dim, d) => {
      const column = observations.map((point) => point[d] as number);
      return dim.type === "categorical"
        ? categoricalKernels(dim, column, options.priorWeight)
        : numericKernels(dim, column, options);
    });
  }

  get kernelCount(): number {
    return this.#logWeights.length;
  }

  /** `count` points drawn from the mixture. */
  sample(rng: RandomGenerator, count: number): number[][] {
    const points: number[][] = [];
    for (let s = 0; s < count; s++) {
      const j = pickIndex(this.#cumulativeWeights, uniform(rng));
      points.push(
        this.#dims.map((dim, d) => {
          const kernels = this.#kernels[d] as NumericKernels | CategoricalKernels;
          if (kernels.type === "categorical") {
            return pickIndex(kernels.cumulative[j] as Float64Array, uniform(rng));
          }
          const mu = kernels.mus[j] as number;
          const sigma = kernels.sigmas[j] as number;
          const z =
            mu + sigma * truncNormPpf(uniform(rng), kernels.a[j] as number, kernels.b[j] as number);
          const clipped = Math.min(
            Math.max(z, (dim as { zLow: number }).zLow),
            (dim as { zHigh: number }).zHigh,
          );
          return dim.type === "discrete" ? snapToGrid(dim, clipped) : clipped;
        }),
      );
    }
    return points;
  }

  /** The log density (log probability for discrete and categorical dimensions) of each point. */
  logPdf(points: readonly (readonly number[])[]): Float64Array {
    const kernelCount = this.kernelCount;
    const terms = points.map(() => Float64Array.from(this.#logWeights));
    this.#dims.forEach((dim, d) => {
      const kernels = this.#kernels[d] as NumericKernels | CategoricalKernels;
      if (kernels.type === "categorical") {
        points.forEach((point, s) => {
          const c = point[d] as number;
          const row = terms[s] as Float64Array;
          for (let j = 0; j < kernelCount; j++)
            row[j] = (row[j] as number) + ((kernels.logProbs[j] as Float64Array)[c] as number);
        });
        return;
      }
      if (dim.type === "continuous") {
        points.forEach((point, s) => {
          const z = point[d] as number;
          const row = terms[s] as Float64Array;
          for (let j = 0; j < kernelCount; j++) {
            const sigma = kernels.sigmas[j] as number;
            row[j] =
              (row[j] as number) +
              normLogPdf((z - (kernels.mus[j] as number)) / sigma) -
              Math.log(sigma) -
              (kernels.logMass[j] as number);
          }
        });
        return;
      }
      if (dim.type !== "discrete") return;
      // A grid value's mass is its cell [value − step/2, value + step/2] (clipped to the
      // widened range), computed once per distinct grid index.
      const cache = new Map<number, Float64Array>();
      points.forEach((point, s) => {
        const k = point[d] as number;
        let masses = cache.get(k);
        if (masses === undefined) {
          const lower = k === 0 ? dim.zLow : discreteZ(dim, k - 0.5);
          const upper = k === dim.count - 1 ? dim.zHigh : discreteZ(dim, k + 0.5);
          masses = new Float64Array(kernelCount);
          for (let j = 0; j < kernelCount; j++) {
            const mu = kernels.mus[j] as number;
            const sigma = kernels.sigmas[j] as number;
            masses[j] =
              logGaussMass((lower - mu) / sigma, (upper - mu) / sigma) -
              (kernels.logMass[j] as number);
          }
          cache.set(k, masses);
        }
        const row = terms[s] as Float64Array;
        for (let j = 0; j < kernelCount; j++) row[j] = (row[j] as number) + (masses[j] as number);
      });
    });
    return Float64Array.from(terms, logSumExp);
  }
}

function logSumExp(values: Float64Array): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of values) if (v > max) max = v;
  if (max === Number.NEGATIVE_INFINITY) return max;
  let sum = 0;
  for (const v of values) sum += Math.exp(v - max);
  return max + Math.log(sum);
}
