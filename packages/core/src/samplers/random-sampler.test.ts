import { describe, expect, it } from "vitest";
import { createRandomSampler } from "./random-sampler.ts";
import type { SearchSpace } from "./search-space.ts";

const space: SearchSpace = {
  lr: { kind: "float", low: 1e-5, high: 1e-1, log: true },
  layers: { kind: "int", low: 1, high: 8 },
  opt: { kind: "categorical", choices: ["sgd", "adam", "adamw", "rmsprop"] },
  dropout: { kind: "float", low: 0, high: 0.5 },
  hidden: { kind: "int", low: 32, high: 256, step: 32 },
};

const draws = Array.from({ length: 4000 }, (_, n) =>
  createRandomSampler({ seed: 3 }).suggest(space, [], n),
);

describe("random sampler", () => {
  it("keeps every value in its range, type and grid", () => {
    for (const params of draws) {
      expect(params.lr as number).toBeGreaterThanOrEqual(1e-5);
      expect(params.lr as number).toBeLessThanOrEqual(1e-1);
      expect(
        Number.isInteger(params.layers) &&
          (params.layers as number) >= 1 &&
          (params.layers as number) <= 8,
      ).toBe(true);
      expect(["sgd", "adam", "adamw", "rmsprop"]).toContain(params.opt);
      expect(params.dropout as number).toBeGreaterThanOrEqual(0);
      expect(params.dropout as number).toBeLessThanOrEqual(0.5);
      expect((params.hidden as number) % 32).toBe(0);
    }
  });

  it("is log-uniform for log parameters and uniform over ints and choices", () => {
    const share = (predicate: (p: Record<string, unknown>) => boolean): number =>
      draws.filter(predicate).length / draws.length;
    // half of [1e-5, 1e-1] in log space lies below 1e-3
    expect(Math.abs(share((p) => (p.lr as number) < 1e-3) - 0.5)).toBeLessThan(0.04);
    for (let layers = 1; layers <= 8; layers++) {
      expect(Math.abs(share((p) => p.layers === layers) - 1 / 8)).toBeLessThan(0.025);
    }
    for (const opt of ["sgd", "adam", "adamw", "rmsprop"]) {
      expect(Math.abs(share((p) => p.opt === opt) - 1 / 4)).toBeLessThan(0.03);
    }
    expect(Math.abs(share((p) => (p.dropout as number) < 0.1) - 0.2)).toBeLessThan(0.03);
  });

  it("depends only on the seed and the trial number", () => {
    const again = createRandomSampler({ seed: 3 });
    expect(again.suggest(space, [], 17)).toEqual(draws[17]);
    expect(again.suggest(space, [{ number: 0, params: {}, state: "failed" }], 17)).toEqual(
      draws[17],
    );
    expect(again.suggest(space, [], 18)).not.toEqual(draws[17]);
    expect(createRandomSampler({ seed: 4 }).suggest(space, [], 17)).not.toEqual(draws[17]);
  });

  it("returns the parameters in the space's key order", () => {
    expect(Object.keys(draws[0] as object)).toEqual(Object.keys(space));
  });
});
