import { describe, expect, it } from "vitest";
import {
  SOBOL_MAX_DIMENSIONS,
  createSobolSampler,
  plainSobolDimensions,
  sobolPoint,
} from "./sobol-sampler.ts";
import type { SearchSpace } from "./search-space.ts";

describe("sobolPoint", () => {
  it("reproduces scipy's unscrambled Sobol sequence (Joe-Kuo direction numbers)", () => {
    // scipy 1.17.1: qmc.Sobol(d=25, scramble=False).random(10)[:, [0, 1, 2, 5, 10, 20, 24]]
    const expected = [
      [0, 0, 0, 0, 0, 0, 0],
      [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
      [0.75, 0.25, 0.25, 0.75, 0.75, 0.25, 0.25],
      [0.25, 0.75, 0.75, 0.25, 0.25, 0.75, 0.75],
      [0.375, 0.375, 0.625, 0.125, 0.875, 0.125, 0.875],
      [0.875, 0.875, 0.125, 0.625, 0.375, 0.625, 0.375],
      [0.625, 0.125, 0.875, 0.875, 0.125, 0.375, 0.625],
      [0.125, 0.625, 0.375, 0.375, 0.625, 0.875, 0.125],
      [0.1875, 0.3125, 0.9375, 0.3125, 0.6875, 0.1875, 0.4375],
      [0.6875, 0.8125, 0.4375, 0.8125, 0.1875, 0.6875, 0.9375],
    ];
    const dims = plainSobolDimensions(25);
    expected.forEach((row, i) => {
      const point = sobolPoint(i, dims);
      expect([0, 1, 2, 5, 10, 20, 24].map((d) => point[d])).toEqual(row);
    });
  });

  it("refuses indices outside [0, 2^32)", () => {
    expect(() => sobolPoint(-1, plainSobolDimensions(1))).toThrow("point index");
    expect(() => sobolPoint(2 ** 32, plainSobolDimensions(1))).toThrow("point index");
  });
});

describe("sobol sampler", () => {
  const unit: SearchSpace = {
    a: { kind: "float", low: 0, high: 1 },
    b: { kind: "float", low: 0, high: 1 },
  };

  it("keeps Sobol's stratification after scrambling: 64 points fill an 8×8 grid once each", () => {
    const sampler = createSobolSampler({ seed: 11 });
    const cells = new Set(
      Array.from({ length: 64 }, (_, n) => {
        const { a, b } = sampler.suggest(unit, [], n) as { a: number; b: number };
        return `${Math.floor(a * 8)},${Math.floor(b * 8)}`;
      }),
    );
    expect(cells.size).toBe(64);
  });

  it("scrambles differently per seed and replays the same points for a seed", () => {
    const first = createSobolSampler({ seed: 1 }).suggest(unit, [], 5);
    expect(createSobolSampler({ seed: 1 }).suggest(unit, [], 5)).toEqual(first);
    expect(createSobolSampler({ seed: 2 }).suggest(unit, [], 5)).not.toEqual(first);
    expect(first).not.toEqual(sobolPoint(5, plainSobolDimensions(2)));
  });

  it("maps through the parameter transforms: 8 points give each of 4 choices twice", () => {
    const space: SearchSpace = {
      opt: { kind: "categorical", choices: ["sgd", "adam", "adamw", "rmsprop"] },
      lr: { kind: "float", low: 1e-5, high: 1e-1, log: true },
      layers: { kind: "int", low: 1, high: 8 },
    };
    const sampler = createSobolSampler({ seed: 4 });
    const points = Array.from({ length: 8 }, (_, n) => sampler.suggest(space, [], n));
    for (const opt of ["sgd", "adam", "adamw", "rmsprop"]) {
      expect(points.filter((p) => p.opt === opt)).toHaveLength(2);
    }
    // one point per eighth of [1e-5, 1e-1] in log space, one per layer count
    const octants = points.map((p) => Math.floor(((Math.log10(p.lr as number) + 5) / 4) * 8));
    expect(new Set(octants).size).toBe(8);
    expect(new Set(points.map((p) => p.layers)).size).toBe(8);
  });

  it("supports 256 parameters and names the way out beyond", () => {
    const wide = (n: number): SearchSpace =>
      Object.fromEntries(
        Array.from({ length: n }, (_, i) => [
          `p${String(i).padStart(3, "0")}`,
          { kind: "float", low: 0, high: 1 },
        ]),
      );
    expect(SOBOL_MAX_DIMENSIONS).toBe(256);
    expect(Object.keys(createSobolSampler({ seed: 1 }).suggest(wide(256), [], 3))).toHaveLength(
      256,
    );
    expect(() => createSobolSampler({ seed: 1 }).suggest(wide(257), [], 3)).toThrow(
      "257 parameters, at most 256 are supported: use the random or tpe sampler",
    );
  });
});
