import { describe, expect, it } from "vitest";
import { ParzenEstimator, defaultWeights, kernelBandwidths } from "./parzen-estimator.ts";
import { compileSearchSpace } from "./search-space.ts";
import { RNG_STREAMS, seededRng } from "./seeded-rng.ts";

// Reference log densities come from an independent Python implementation of Optuna 4.9's
// Parzen estimator (the rules in /work/shared/notes/sweeps.md) on scipy 1.17.1:
// stats.truncnorm.logpdf / .cdf per kernel, special.logsumexp over the mixture, numpy.linspace
// for the weights. Densities of continuous dimensions are in z space (z = ln x for log ones).

const GAP = { priorWeight: 1, bandwidth: "neighbour-gap", dimensionCount: 1 } as const;

function expectNear(actual: number, expected: number): void {
  expect(Math.abs(actual - expected)).toBeLessThan(1e-12 * Math.max(1, Math.abs(expected)));
}

describe("defaultWeights", () => {
  it("gives 1 to the newest 25 and a linear ramp from 1/n to the older ones", () => {
    expect(defaultWeights(3)).toEqual([1, 1, 1]);
    // numpy.concatenate([numpy.linspace(1/30, 1, 5), numpy.ones(25)])
    const expected = [0.03333333333333333, 0.275, 0.5166666666666667, 0.7583333333333333, 1];
    const weights = defaultWeights(30);
    expect(weights).toHaveLength(30);
    weights.slice(0, 5).forEach((w, i) => expectNear(w, expected[i] as number));
    expect(weights.slice(5)).toEqual(Array.from({ length: 25 }, () => 1));
  });
});

describe("kernelBandwidths", () => {
  it("takes the larger neighbour gap, ignores the range's ends for the outermost and applies the magic clip", () => {
    // observations 1, 4, −3 in [−5, 10] (prior centre 2.5): gaps give 4, 1.5, 4; the clip
    // raises 1.5 to 15 / min(100, 3 + 2) = 3.
    expect(
      kernelBandwidths([1, 4, -3], -5, 10, { bandwidth: "neighbour-gap", dimensionCount: 1 }),
    ).toEqual([4, 3, 4]);
    // duplicates: 2, 4, 4, 7 in [0.5, 8.5] → 2, 2, 0.5 → clipped to 8/6, 2.5
    const sigmas = kernelBandwidths([2, 4, 4, 7], 0.5, 8.5, {
      bandwidth: "neighbour-gap",
      dimensionCount: 1,
    });
    expect(sigmas.map((s) => Number(s.toFixed(12)))).toEqual([2, 2, 1.333333333333, 2.5]);
  });

  it("uses 0.2·n^(−1/(d+4)) of the range under the scott rule, clipped", () => {
    const sigmas = kernelBandwidths(
      Array.from({ length: 98 }, (_, i) => i / 98),
      0,
      1,
      { bandwidth: "scott", dimensionCount: 2 },
    );
    expectNear(sigmas[0] as number, 0.2 * 98 ** (-1 / 6));
    // with 3 observations the clip's floor (range / 5) wins
    expect(
      kernelBandwidths([0.1, 0.5, 0.9], 0, 1, { bandwidth: "scott", dimensionCount: 3 }),
    ).toEqual([0.2, 0.2, 0.2]);
  });
});

describe("ParzenEstimator.logPdf", () => {
  it("matches scipy for a float parameter", () => {
    const dims = compileSearchSpace({ x: { kind: "float", low: -5, high: 10 } });
    const estimator = new ParzenEstimator(dims, [[1], [4], [-3]], GAP);
    const logPdf = estimator.logPdf([[-4.5], [0], [2.2], [9.9]]);
    [-2.807648319390366, -2.469680055568813, -2.439554449344212, -3.782017239680888].forEach(
      (expected, i) => expectNear(logPdf[i] as number, expected),
    );
  });

  it("matches scipy's cell probabilities for an int parameter", () => {
    const dims = compileSearchSpace({ layers: { kind: "int", low: 1, high: 8 } });
    // grid indices of the values 2, 4, 4, 7
    const estimator = new ParzenEstimator(dims, [[1], [3], [3], [6]], GAP);
    const logPdf = estimator.logPdf([[0], [3], [7]]);
    [-2.4023768109716173, -1.7187069138503444, -2.6369662202434387].forEach((expected, i) =>
      expectNear(logPdf[i] as number, expected),
    );
  });

  it("works in log space for a log parameter", () => {
    const dims = compileSearchSpace({ lr: { kind: "float", low: 1e-5, high: 1e-1, log: true } });
    const estimator = new ParzenEstimator(
      dims,
      [[Math.log(1e-3)], [Math.log(3e-4)], [Math.log(5e-2)]],
      GAP,
    );
    const logPdf = estimator.logPdf([[Math.log(1e-4)], [Math.log(1e-3)], [Math.log(0.05)]]);
    [-2.1858605906943414, -1.8568209289341984, -2.5426146276513624].forEach((expected, i) =>
      expectNear(logPdf[i] as number, expected),
    );
  });

  it("smooths categorical observations with prior_weight/(n+1)", () => {
    const dims = compileSearchSpace({
      opt: { kind: "categorical", choices: ["sgd", "adam", "adamw", "rmsprop"] },
    });
    const estimator = new ParzenEstimator(dims, [[2], [0], [2]], GAP);
    const logPdf = estimator.logPdf([[0], [1], [2], [3]]);
    [-1.268511325463507, -1.8562979903656258, -0.9007865453381897, -1.8562979903656258].forEach(
      (expected, i) => expectNear(logPdf[i] as number, expected),
    );
  });

  it("multiplies joint kernels and applies observation weights", () => {
    const dims = compileSearchSpace({
      a: { kind: "float", low: 0, high: 1 },
      b: { kind: "float", low: -2, high: 2 },
      c: { kind: "categorical", choices: ["p", "q", "r"] },
    });
    const estimator = new ParzenEstimator(
      dims,
      [
        [0.2, -1, 0],
        [0.7, 0.5, 2],
        [0.4, 1.5, 2],
      ],
      { priorWeight: 1, bandwidth: "scott", dimensionCount: 3 },
      [1, 0.5, 0.25],
    );
    const logPdf = estimator.logPdf([
      [0.25, -0.8, 0],
      [0.5, 1, 2],
      [0.95, -1.9, 1],
    ]);
    [-1.0365376702713351, -1.7741249423439132, -3.621944914075424].forEach((expected, i) =>
      expectNear(logPdf[i] as number, expected),
    );
  });

  it("is the prior alone when there are no observations", () => {
    const dims = compileSearchSpace({ x: { kind: "float", low: 0, high: 2 } });
    const estimator = new ParzenEstimator(dims, [], GAP);
    expect(estimator.kernelCount).toBe(1);
    // N(1, 2) truncated to [0, 2] at x = 1: scipy.stats.truncnorm.logpdf(1, -0.5, 0.5, 1, 2)
    expectNear(estimator.logPdf([[1]])[0] as number, -0.6521693800689957);
  });
});

describe("ParzenEstimator.sample", () => {
  it("draws from the mixture (empirical cdf within 0.015 of scipy's)", () => {
    const dims = compileSearchSpace({ x: { kind: "float", low: -5, high: 10 } });
    const estimator = new ParzenEstimator(dims, [[1], [4], [-3]], GAP);
    const samples = estimator
      .sample(seededRng(RNG_STREAMS.tpe, 5, 0), 20000)
      .map((p) => p[0] as number);
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(-5);
    expect(Math.max(...samples)).toBeLessThanOrEqual(10);
    // Σ wᵢ·truncnorm.cdf(x, …) over the kernels, scipy 1.17.1
    const expected: [number, number][] = [
      [-3, 0.1279791079275467],
      [0, 0.36381088022658337],
      [3, 0.6235748012226932],
      [6, 0.8467970868943707],
    ];
    for (const [x, cdf] of expected) {
      const empirical = samples.filter((s) => s <= x).length / samples.length;
      expect(Math.abs(empirical - cdf)).toBeLessThan(0.015);
    }
  });

  it("puts discrete and categorical draws on their grids", () => {
    const dims = compileSearchSpace({
      hidden: { kind: "int", low: 32, high: 256, step: 32, log: true },
      opt: { kind: "categorical", choices: ["a", "b"] },
    });
    const estimator = new ParzenEstimator(
      dims,
      [
        [2, 1],
        [5, 0],
      ],
      GAP,
    );
    for (const [k, c] of estimator.sample(seededRng(RNG_STREAMS.tpe, 9, 0), 500)) {
      expect(Number.isInteger(k) && (k as number) >= 0 && (k as number) <= 7).toBe(true);
      expect([0, 1]).toContain(c);
    }
  });
});
