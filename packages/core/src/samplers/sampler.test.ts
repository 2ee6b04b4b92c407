import { describe, expect, it } from "vitest";
import { createSampler } from "./sampler.ts";
import type { SamplerKind, TrialRecord } from "./sampler.ts";
import type { SearchSpace } from "./search-space.ts";

const space: SearchSpace = {
  x: { kind: "float", low: -5, high: 10 },
  y: { kind: "float", low: 0, high: 15 },
};
const trials: TrialRecord[] = Array.from({ length: 15 }, (_, number) => ({
  number,
  params: { x: number - 5, y: number },
  state: "complete",
  value: (number - 7) ** 2,
}));

describe("createSampler", () => {
  it.each<SamplerKind>(["random", "sobol", "tpe"])(
    "creates a %s sampler that replays its suggestions",
    (kind) => {
      const a = createSampler(kind, { seed: 7, direction: "minimize" }).suggest(space, trials, 15);
      const b = createSampler(kind, { seed: 7, direction: "minimize" }).suggest(space, trials, 15);
      expect(a).toEqual(b);
      expect(Object.keys(a)).toEqual(["x", "y"]);
    },
  );

  it("defaults TPE to the multivariate variant with the constant liar and 10 startup trials", () => {
    const running: TrialRecord[] = [
      ...trials,
      { number: 15, params: { x: 2, y: 7 }, state: "running" },
    ];
    const byDefault = createSampler("tpe", { seed: 7, direction: "minimize" }).suggest(
      space,
      running,
      16,
    );
    const explicit = createSampler("tpe", {
      seed: 7,
      direction: "minimize",
      multivariate: true,
      constantLiar: true,
      nStartupTrials: 10,
    }).suggest(space, running, 16);
    expect(byDefault).toEqual(explicit);
    const univariate = createSampler("tpe", {
      seed: 7,
      direction: "minimize",
      multivariate: false,
    });
    expect(univariate.suggest(space, running, 16)).not.toEqual(byDefault);
  });

  it("rejects an unknown kind, a non-integer seed and an unknown direction", () => {
    expect(() => createSampler("grid" as SamplerKind, { seed: 1, direction: "minimize" })).toThrow(
      '[core] unknown sampler "grid": use one of random, sobol, tpe',
    );
    expect(() => createSampler("tpe", { seed: 1.5, direction: "minimize" })).toThrow(
      "[core] sampler: seed must be an integer, got 1.5",
    );
    expect(() => createSampler("tpe", { seed: 1, direction: "min" as "minimize" })).toThrow(
      '[core] sampler: direction must be "minimize" or "maximize", got min',
    );
  });

  it("accepts any safe integer seed, negative or beyond 32 bits", () => {
    const big = createSampler("random", { seed: 2 ** 40 + 3, direction: "minimize" }).suggest(
      space,
      [],
      0,
    );
    const other = createSampler("random", { seed: 3, direction: "minimize" }).suggest(space, [], 0);
    expect(big).not.toEqual(other);
    expect(
      createSampler("random", { seed: -3, direction: "minimize" }).suggest(space, [], 0),
    ).not.toEqual(other);
  });
});
