// Benchmark of the samplers of `num_trials` studies against Optuna 4.9's reference figures
// (/work/shared/notes/sweeps.md): median simple regret over seeds on Branin, Hartmann6 and the
// mixed space, sequentially and with 8 trials in flight, and the time to suggest one trial
// with 200 observed.
//
//   cd packages/core && npx tsc -p tsconfig.build.json && cd ../..
//   nice -n 10 node bench/samplers.mjs [--seeds N] [--quick]
//
// Seeds 0 … N−1, 50 by default (as many as Optuna's figures; the medians of the batch cells
// move by ±0.03 between seed sets of that size), --quick: 10. With 8 in flight two protocols
// run: async (the oldest running trial finishes, the next is asked at once, seeing the 7
// still running) and batches (ask 8, tell 8, as Optuna measured its figures).
import {
  createSampler,
  createTpeSampler,
  optunaTpeSettings,
} from "../packages/core/dist/samplers/index.js";
import { branin, functions, hartmann6, mixed } from "./samplers-functions.mjs";

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
};
const seedCount = option("--seeds", flag("--quick") ? 10 : 50);
const IN_FLIGHT = 8;

// Optuna 4.9, median simple regret over 50 seeds.
const OPTUNA = {
  Branin: {
    50: { random: 0.77, tpe: 0.27, mv: 0.17 },
    100: { random: 0.31, tpe: 0.058, mv: 0.063 },
  },
  Hartmann6: {
    50: { random: 1.49, tpe: 0.72, mv: 0.68 },
    100: { random: 1.2, tpe: 0.33, mv: 0.32 },
  },
  mixed: {
    50: { random: 0.17, tpe: 0.068, mv: 0.038 },
    100: { random: 0.13, tpe: 0.0087, mv: 0.0053 },
  },
};
const OPTUNA_IN_FLIGHT = {
  Hartmann6: { 100: { random: 1.2, noLiar: 0.61, liar: 0.35 } },
  Branin: { 60: { random: 0.67, liar: 0.14 } },
};

// Ours through createSampler; "optuna" and "optuna-mv" reproduce Optuna 4.9's defaults
// (univariate / multivariate) to show the reproduction matches its figures.
const VARIANTS = {
  random: (seed) => createSampler("random", { seed, direction: "minimize" }),
  sobol: (seed) => createSampler("sobol", { seed, direction: "minimize" }),
  optuna: (seed) => optunaSampler(seed, false),
  "optuna-mv": (seed) => optunaSampler(seed, true),
  "optuna-noliar": (seed) => optunaSampler(seed, false, false),
  ours: (seed) => createSampler("tpe", { seed, direction: "minimize" }),
  "ours-uni": (seed) => createSampler("tpe", { seed, direction: "minimize", multivariate: false }),
  "ours-noliar": (seed) =>
    createSampler("tpe", { seed, direction: "minimize", constantLiar: false }),
};

function optunaSampler(seed, multivariate, constantLiar = true) {
  return createTpeSampler({
    ...optunaTpeSettings(multivariate),
    seed,
    direction: "minimize",
    multivariate,
    nStartupTrials: 10,
    constantLiar,
  });
}

const makeSampler = (variant, seed) => VARIANTS[variant](seed);

/** Best-so-far value after each trial, in trial-number order. */
function bestSoFar(values) {
  let best = Infinity;
  return values.map((v) => (best = Math.min(best, v)));
}

function runSequential(fn, variant, seed, trialCount) {
  const sampler = makeSampler(variant, seed);
  const trials = [];
  for (let number = 0; number < trialCount; number++) {
    const params = sampler.suggest(fn.space, trials, number);
    trials.push({ number, params, state: "complete", value: fn.evaluate(params) });
  }
  return bestSoFar(trials.map((t) => t.value));
}

/**
 * 8 trials in flight. "async": the oldest running trial finishes and the next is asked at
 * once, seeing the 7 still running. "batch": ask 8, then tell all 8 (Optuna's protocol for
 * its reference figures).
 */
function runParallel(fn, variant, seed, trialCount, protocol) {
  const sampler = makeSampler(variant, seed);
  const trials = [];
  const running = [];
  let next = 0;
  const ask = () => {
    const number = next++;
    const trial = { number, params: sampler.suggest(fn.space, trials, number), state: "running" };
    trials.push(trial);
    running.push(trial);
  };
  const finishOldest = () => {
    const done = running.shift();
    done.state = "complete";
    done.value = fn.evaluate(done.params);
  };
  while (next < Math.min(IN_FLIGHT, trialCount)) ask();
  while (running.length > 0) {
    if (protocol === "async") {
      finishOldest();
      if (next < trialCount) ask();
    } else {
      while (running.length > 0) finishOldest();
      while (next < trialCount && running.length < IN_FLIGHT) ask();
    }
  }
  return bestSoFar(trials.map((t) => t.value));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median simple regret at each requested trial count; mode: sequential, async or batch. */
function regrets(fn, variant, mode, counts) {
  const maxCount = Math.max(...counts);
  const curves = [];
  for (let seed = 0; seed < seedCount; seed++) {
    curves.push(
      mode === "sequential"
        ? runSequential(fn, variant, seed, maxCount)
        : runParallel(fn, variant, seed, maxCount, mode),
    );
  }
  return Object.fromEntries(
    counts.map((n) => [n, median(curves.map((curve) => curve[n - 1] - fn.optimum))]),
  );
}

const fmt = (v) =>
  v === undefined ? "" : v >= 0.1 ? v.toFixed(2) : v >= 0.01 ? v.toFixed(3) : v.toPrecision(2);
const cell = (ours, ref) => `${fmt(ours)}${ref === undefined ? "" : ` (${fmt(ref)})`}`.padEnd(15);
const mark = (ours, ref) => (ref === undefined ? "" : ours <= ref ? "meets" : "MISSES");
const row = (...cells) => console.log(cells.join(" "));

function checkFunctions() {
  const h = hartmann6.evaluate({
    x1: 0.20169,
    x2: 0.150011,
    x3: 0.476874,
    x4: 0.275332,
    x5: 0.311652,
    x6: 0.6573,
  });
  const b = branin.evaluate({ x1: Math.PI, x2: 2.275 });
  const m = mixed.evaluate({ lr: 1e-3, layers: 4, opt: "adamw", dropout: 0.2 });
  if (Math.abs(h - hartmann6.optimum) > 1e-4 || Math.abs(b - branin.optimum) > 1e-5 || m !== 0) {
    throw new Error(`test functions disagree with their optima: ${h} ${b} ${m}`);
  }
}

function suggestTimeMs(fn, variant) {
  const sampler = makeSampler(variant, 1);
  const random = makeSampler("random", 1);
  const trials = [];
  for (let number = 0; number < 200; number++) {
    const params = random.suggest(fn.space, trials, number);
    trials.push({ number, params, state: "complete", value: fn.evaluate(params) });
  }
  const times = [];
  for (let i = 0; i < 25; i++) {
    const start = performance.now();
    sampler.suggest(fn.space, trials, 200 + i);
    times.push(performance.now() - start);
  }
  return median(times.slice(5));
}

checkFunctions();
const started = performance.now();
console.log(
  `Median simple regret over ${seedCount} seeds; Optuna 4.9's figure (50 seeds) in brackets.`,
);
console.log(
  `ours = createSampler("tpe") (multivariate, TPE_DEFAULTS); optuna = our reproduction of Optuna's defaults.\n`,
);

console.log("Sequential");
row(
  "function  ",
  "trials",
  ...["random", "sobol", "optuna", "optuna-mv", "ours-uni", "ours"].map((h) => h.padEnd(15)),
  "ours <= Optuna TPE",
);
for (const fn of functions) {
  const variants = ["random", "sobol", "optuna", "optuna-mv", "ours-uni", "ours"];
  const results = Object.fromEntries(
    variants.map((variant) => [variant, regrets(fn, variant, "sequential", [50, 100])]),
  );
  for (const n of [50, 100]) {
    const ref = OPTUNA[fn.name][n];
    row(
      fn.name.padEnd(10),
      String(n).padEnd(6),
      cell(results.random[n], ref.random),
      cell(results.sobol[n]),
      cell(results.optuna[n], ref.tpe),
      cell(results["optuna-mv"][n], ref.mv),
      cell(results["ours-uni"][n]),
      cell(results.ours[n], ref.tpe),
      mark(results.ours[n], ref.tpe),
    );
  }
}

for (const protocol of ["async", "batch"]) {
  console.log(
    protocol === "async"
      ? `\n${IN_FLIGHT} in flight, async: when the oldest finishes, the next is asked (7 still running)`
      : `\n${IN_FLIGHT} in flight, in batches: ask ${IN_FLIGHT}, tell ${IN_FLIGHT} (Optuna's protocol for its figures)`,
  );
  row(
    "function  ",
    "trials",
    ...["random", "optuna+liar", "optuna no liar", "ours no liar", "ours+liar"].map((h) =>
      h.padEnd(15),
    ),
    "ours+liar <= Optuna+liar",
  );
  for (const fn of functions) {
    const counts = fn === branin ? [50, 60, 100] : [50, 100];
    const results = {
      random: regrets(fn, "random", "sequential", counts),
      optuna: regrets(fn, "optuna", protocol, counts),
      optunaNoLiar: regrets(fn, "optuna-noliar", protocol, counts),
      noLiar: regrets(fn, "ours-noliar", protocol, counts),
      ours: regrets(fn, "ours", protocol, counts),
    };
    for (const n of counts) {
      const ref = OPTUNA_IN_FLIGHT[fn.name]?.[n] ?? {};
      row(
        fn.name.padEnd(10),
        String(n).padEnd(6),
        cell(results.random[n], ref.random),
        cell(results.optuna[n], ref.liar),
        cell(results.optunaNoLiar[n], ref.noLiar),
        cell(results.noLiar[n]),
        cell(results.ours[n], ref.liar),
        mark(results.ours[n], ref.liar),
      );
    }
  }
}

console.log("\nTime to suggest one trial with 200 observed (median of 20; target < 5 ms)");
for (const fn of [hartmann6, mixed]) {
  for (const variant of ["ours", "ours-uni", "optuna"]) {
    const ms = suggestTimeMs(fn, variant);
    row(fn.name.padEnd(10), variant.padEnd(9), `${ms.toFixed(2)} ms`, ms < 5 ? "meets" : "MISSES");
  }
}
console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s)`);
