// Test functions of bench/samplers.mjs, exactly as /work/shared/notes/sweeps.md defines them
// (so our figures compare with Optuna's reference figures), with their search spaces.

const { PI, cos, exp, log10 } = Math;

/** Branin: x1 in [-5, 10], x2 in [0, 15]; optimum 0.397887. */
export const branin = {
  name: "Branin",
  space: {
    x1: { kind: "float", low: -5, high: 10 },
    x2: { kind: "float", low: 0, high: 15 },
  },
  optimum: 0.397887,
  evaluate({ x1, x2 }) {
    const a = 1;
    const b = 5.1 / (4 * PI * PI);
    const c = 5 / PI;
    const r = 6;
    const s = 10;
    const t = 1 / (8 * PI);
    return a * (x2 - b * x1 * x1 + c * x1 - r) ** 2 + s * (1 - t) * cos(x1) + s;
  },
};

const ALPHA = [1.0, 1.2, 3.0, 3.2];
const A = [
  [10, 3, 17, 3.5, 1.7, 8],
  [0.05, 10, 17, 0.1, 8, 14],
  [3, 3.5, 1.7, 10, 17, 8],
  [17, 8, 0.05, 10, 0.1, 14],
];
const P = [
  [1312, 1696, 5569, 124, 8283, 5886],
  [2329, 4135, 8307, 3736, 1004, 9991],
  [2348, 1451, 3522, 2883, 3047, 6650],
  [4047, 8828, 8732, 5743, 1091, 381],
].map((row) => row.map((v) => v * 1e-4));

/** Hartmann6: x in [0, 1]^6; optimum −3.32237. */
export const hartmann6 = {
  name: "Hartmann6",
  space: Object.fromEntries(
    Array.from({ length: 6 }, (_, i) => [`x${i + 1}`, { kind: "float", low: 0, high: 1 }]),
  ),
  optimum: -3.32237,
  evaluate(params) {
    const x = Array.from({ length: 6 }, (_, i) => params[`x${i + 1}`]);
    let total = 0;
    for (let i = 0; i < 4; i++) {
      let inner = 0;
      for (let j = 0; j < 6; j++) inner += A[i][j] * (x[j] - P[i][j]) ** 2;
      total -= ALPHA[i] * exp(-inner);
    }
    return total;
  },
};

const OPTIMIZER_PENALTY = { sgd: 0.3, adam: 0.05, adamw: 0, rmsprop: 0.15 };

/** Mixed: log-uniform lr, int layers, categorical optimizer, float dropout; optimum 0. */
export const mixed = {
  name: "mixed",
  space: {
    lr: { kind: "float", low: 1e-5, high: 1e-1, log: true },
    layers: { kind: "int", low: 1, high: 8 },
    opt: { kind: "categorical", choices: ["sgd", "adam", "adamw", "rmsprop"] },
    dropout: { kind: "float", low: 0, high: 0.5 },
  },
  optimum: 0,
  evaluate({ lr, layers, opt, dropout }) {
    return (
      (log10(lr) + 3) ** 2 +
      0.1 * (layers - 4) ** 2 +
      OPTIMIZER_PENALTY[opt] +
      4 * (dropout - 0.2) ** 2
    );
  },
};

export const functions = [branin, hartmann6, mixed];
