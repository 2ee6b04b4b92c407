import { describe, expect, it } from "vitest";
import { createRandomSampler } from "./random-sampler.ts";
import type { Sampler, TrialRecord } from "./sampler.ts";
import type { SearchSpace } from "./search-space.ts";
import { TPE_DEFAULTS, createTpeSampler, goodCount, optunaTpeSettings } from "./tpe-sampler.ts";
import type { TpeSamplerOptions } from "./tpe-sampler.ts";

const mixedSpace: SearchSpace = {
  lr: { kind: "float", low: 1e-5, high: 1e-1, log: true },
  layers: { kind: "int", low: 1, high: 8 },
  opt: { kind: "categorical", choices: ["sgd", "adam", "adamw", "rmsprop"] },
  dropout: { kind: "float", low: 0, high: 0.5, step: 0.05 },
  hidden: { kind: "int", low: 16, high: 512, step: 16, log: true },
};
const penalty: Record<string, number> = { sgd: 0.3, adam: 0.05, adamw: 0, rmsprop: 0.15 };
function mixed(p: Record<string, unknown>): number {
  return (
    (Math.log10(p.lr as number) + 3) ** 2 +
    0.1 * ((p.layers as number) - 4) ** 2 +
    (penalty[p.opt as string] as number) +
    4 * ((p.dropout as number) - 0.2) ** 2 +
    0.01 * Math.log2((p.hidden as number) / 128) ** 2
  );
}

function tpe(options: Partial<TpeSamplerOptions> = {}): Sampler {
  return createTpeSampler({
    seed: 1,
    direction: "minimize",
    multivariate: true,
    nStartupTrials: 10,
    constantLiar: true,
    ...options,
  });
}

/** Runs `count` sequential trials and returns them. */
function study(
  sampler: Sampler,
  space: SearchSpace,
  objective: (p: Record<string, unknown>) => number,
  count: number,
): TrialRecord[] {
  const trials: TrialRecord[] = [];
  for (let number = 0; number < count; number++) {
    const params = sampler.suggest(space, trials, number);
    trials.push({ number, params, state: "complete", value: objective(params) });
  }
  return trials;
}

const history = study(tpe(), mixedSpace, mixed, 25);

describe("tpe sampler", () => {
  it("suggests the same point for the same seed and history, whatever the call order", () => {
    const fresh = tpe();
    const first = fresh.suggest(mixedSpace, history, 25);
    expect(tpe().suggest(mixedSpace, [...history].reverse(), 25)).toEqual(first);
    fresh.suggest(mixedSpace, history, 40);
    expect(fresh.suggest(mixedSpace, history, 25)).toEqual(first);
  });

  it("suggests different points for different trial numbers and seeds", () => {
    const first = tpe().suggest(mixedSpace, history, 25);
    expect(tpe().suggest(mixedSpace, history, 26)).not.toEqual(first);
    expect(tpe({ seed: 2 }).suggest(mixedSpace, history, 25)).not.toEqual(first);
  });

  it("samples at random until nStartupTrials trials are complete", () => {
    const random = createRandomSampler({ seed: 1 });
    const early = history.slice(0, 9);
    expect(tpe().suggest(mixedSpace, early, 9)).toEqual(random.suggest(mixedSpace, [], 9));
    const running = history
      .slice(0, 12)
      .map((t, i) => (i >= 9 ? { ...t, state: "running" as const } : t));
    expect(tpe().suggest(mixedSpace, running, 12)).toEqual(random.suggest(mixedSpace, [], 12));
    expect(tpe().suggest(mixedSpace, history.slice(0, 10), 10)).not.toEqual(
      random.suggest(mixedSpace, [], 10),
    );
  });

  it("ignores failed trials and complete trials without a finite value", () => {
    const suggestion = tpe().suggest(mixedSpace, history, 25);
    const noisy: TrialRecord[] = [
      ...history,
      { number: 30, params: { ...(history[3] as TrialRecord).params }, state: "failed" },
      {
        number: 31,
        params: { ...(history[4] as TrialRecord).params },
        state: "complete",
        value: Number.NaN,
      },
      { number: 32, params: { ...(history[5] as TrialRecord).params }, state: "complete" },
    ];
    expect(tpe().suggest(mixedSpace, noisy, 25)).toEqual(suggestion);
  });

  it("keeps every suggestion in range, on its grid and of its type", () => {
    for (const multivariate of [true, false]) {
      for (const trial of study(tpe({ multivariate, seed: 5 }), mixedSpace, mixed, 60)) {
        const p = trial.params;
        expect(p.lr as number).toBeGreaterThanOrEqual(1e-5);
        expect(p.lr as number).toBeLessThanOrEqual(1e-1);
        expect(
          Number.isInteger(p.layers) && (p.layers as number) >= 1 && (p.layers as number) <= 8,
        ).toBe(true);
        expect(["sgd", "adam", "adamw", "rmsprop"]).toContain(p.opt);
        expect(Number.isInteger(Math.round((p.dropout as number) / 0.05))).toBe(true);
        expect(
          Math.abs((p.dropout as number) / 0.05 - Math.round((p.dropout as number) / 0.05)),
        ).toBeLessThan(1e-9);
        expect((p.dropout as number) <= 0.5 && (p.dropout as number) >= 0).toBe(true);
        expect(
          (p.hidden as number) % 16 === 0 &&
            (p.hidden as number) >= 16 &&
            (p.hidden as number) <= 512,
        ).toBe(true);
      }
    }
  });

  it("converges on the mixed benchmark far better than random search", () => {
    // the notes' mixed function: optimum 0 at lr 1e-3, 4 layers, adamw, dropout 0.2
    const space: SearchSpace = {
      lr: { kind: "float", low: 1e-5, high: 1e-1, log: true },
      layers: { kind: "int", low: 1, high: 8 },
      opt: { kind: "categorical", choices: ["sgd", "adam", "adamw", "rmsprop"] },
      dropout: { kind: "float", low: 0, high: 0.5 },
    };
    const objective = (p: Record<string, unknown>): number =>
      (Math.log10(p.lr as number) + 3) ** 2 +
      0.1 * ((p.layers as number) - 4) ** 2 +
      (penalty[p.opt as string] as number) +
      4 * ((p.dropout as number) - 0.2) ** 2;
    const best = (trials: TrialRecord[]): number =>
      Math.min(...trials.map((t) => t.value as number));
    const median = (v: number[]): number => [...v].sort((a, b) => a - b)[2] as number;
    const seeds = [0, 1, 2, 3, 4];
    const random = median(
      seeds.map((seed) => best(study(createRandomSampler({ seed }), space, objective, 100))),
    );
    for (const multivariate of [true, false]) {
      const found = median(
        seeds.map((seed) => best(study(tpe({ multivariate, seed }), space, objective, 100))),
      );
      expect(found).toBeLessThan(0.02);
      expect(found).toBeLessThan(random / 10);
    }
  });

  it("maximizes when asked", () => {
    const space: SearchSpace = { x: { kind: "float", low: 0, high: 1 } };
    const trials = study(
      tpe({ direction: "maximize" }),
      space,
      (p) => -(((p.x as number) - 0.3) ** 2),
      40,
    );
    const best = trials.reduce((a, b) => ((a.value as number) >= (b.value as number) ? a : b));
    expect(Math.abs((best.params.x as number) - 0.3)).toBeLessThan(0.02);
  });

  it("spreads 8 suggestions in flight with the constant liar (both variants)", () => {
    const space: SearchSpace = {
      x: { kind: "float", low: 0, high: 1 },
      y: { kind: "float", low: 0, high: 1 },
    };
    const objective = (p: Record<string, unknown>): number =>
      ((p.x as number) - 0.3) ** 2 + ((p.y as number) - 0.7) ** 2;
    const minDistance = (constantLiar: boolean, multivariate: boolean, seed: number): number => {
      const sampler = tpe({ constantLiar, multivariate, seed });
      const trials = study(sampler, space, objective, 30);
      const batch: Record<string, unknown>[] = [];
      for (let number = 30; number < 38; number++) {
        const params = sampler.suggest(space, trials, number);
        trials.push({ number, params, state: "running" });
        batch.push(params);
      }
      let min = Number.POSITIVE_INFINITY;
      batch.forEach((p, i) =>
        batch.slice(i + 1).forEach((q) => {
          min = Math.min(
            min,
            Math.hypot((p.x as number) - (q.x as number), (p.y as number) - (q.y as number)),
          );
        }),
      );
      return min;
    };
    const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1] as number;
    for (const multivariate of [true, false]) {
      const seeds = Array.from({ length: 10 }, (_, seed) => seed);
      const withLiar = median(seeds.map((seed) => minDistance(true, multivariate, seed)));
      const without = median(seeds.map((seed) => minDistance(false, multivariate, seed)));
      expect(withLiar).toBeGreaterThan(3 * without);
    }
  });

  it("learns from categorical values that came back through JSON", () => {
    const space: SearchSpace = {
      noise: { kind: "categorical", choices: [[0.01], [0.05], [0.1]] },
      x: { kind: "float", low: 0, high: 1 },
    };
    const objective = (p: Record<string, unknown>): number =>
      ((p.noise as number[])[0] === 0.05 ? 0 : 1) + ((p.x as number) - 0.5) ** 2;
    const sampler = tpe({ seed: 3 });
    const trials: TrialRecord[] = [];
    for (let number = 0; number < 40; number++) {
      const params = JSON.parse(JSON.stringify(sampler.suggest(space, trials, number))) as Record<
        string,
        unknown
      >;
      trials.push({ number, params, state: "complete", value: objective(params) });
    }
    const late = trials.slice(20).filter((t) => (t.params.noise as number[])[0] === 0.05);
    expect(late.length).toBeGreaterThanOrEqual(15);
  });

  it("leaves out trials whose values no longer fit a changed space, and params-less running trials", () => {
    const old = study(tpe(), { x: { kind: "float", low: 0, high: 10 } }, (p) => p.x as number, 20);
    const space: SearchSpace = { x: { kind: "float", low: 0, high: 1 } };
    const trials: TrialRecord[] = [...old, { number: 20, params: {}, state: "running" }];
    for (const multivariate of [true, false]) {
      const { x } = tpe({ multivariate }).suggest(space, trials, 21) as { x: number };
      expect(x >= 0 && x <= 1).toBe(true);
    }
  });

  it("rejects settings that cannot work, naming each", () => {
    expect(() => tpe({ nStartupTrials: -1, nEiCandidates: 0, priorWeight: 0 })).toThrow(
      "[core] tpe sampler: nEiCandidates must be a positive integer, got 0; priorWeight must be positive, got 0; nStartupTrials must be an integer of at least 0, got -1",
    );
  });
});

describe("goodCount and the settings", () => {
  it("takes min(⌈γ·n⌉, 25) good trials", () => {
    expect([1, 10, 11, 95, 250, 400].map((n) => goodCount(n, 0.1))).toEqual([1, 1, 2, 10, 25, 25]);
    expect([10, 53, 93].map((n) => goodCount(n, 0.15))).toEqual([2, 8, 14]);
  });

  it("keeps Optuna's constants in the reproduction preset", () => {
    expect(optunaTpeSettings(false)).toEqual({
      nEiCandidates: 24,
      priorWeight: 1,
      gammaFraction: 0.1,
      bandwidth: "neighbour-gap",
      goodWeighting: "uniform",
      liarWeight: 1,
    });
    expect(optunaTpeSettings(true).bandwidth).toBe("scott");
    expect(TPE_DEFAULTS.nEiCandidates).toBe(24);
  });
});
