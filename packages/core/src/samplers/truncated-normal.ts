/**
 * The standard normal and the truncated normal, computed in log space so that kernels far
 * in a tail keep their precision (the TPE sampler's kernels are truncated to the search
 * range and can sit many standard deviations away from a candidate).
 *
 * All functions work in standard units: a truncated normal with bounds `a < b` is the
 * standard normal conditioned on `a ≤ x ≤ b`; `loc` and `scale` shift and stretch it.
 */

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
const LOG_HALF = Math.log(0.5);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const SQRT_PI = Math.sqrt(Math.PI);
/** Below this argument `erfc` comes from the power series of `erf`, above from a continued fraction. */
const SERIES_LIMIT = 2;

/** erf(z) for 0 ≤ z < SERIES_LIMIT: 2/√π · e^(−z²) · Σ (2z²)ⁿ z / (2n+1)!!, a series of positive terms. */
function erfSeries(z: number): number {
  const twoZ2 = 2 * z * z;
  let term = z;
  let sum = z;
  for (let n = 1; n < 100; n++) {
    term *= twoZ2 / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-z * z) * sum;
}

/**
 * The scaled complementary error function e^(z²)·erfc(z) for z ≥ SERIES_LIMIT, from the
 * continued fraction erfc(z) = e^(−z²)/√π · 1/(z + ½/(z + 1/(z + 3⁄2/(z + …)))) evaluated by
 * the modified Lentz method.
 */
function erfcxContinuedFraction(z: number): number {
  const tiny = 1e-300;
  let f = z;
  let c = z;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = z + a * d;
    if (d === 0) d = tiny;
    c = z + a / c;
    if (c === 0) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return 1 / (f * SQRT_PI);
}

/** The complementary error function, accurate to a few units in the last place relative. */
export function erfc(z: number): number {
  if (Number.isNaN(z)) return Number.NaN;
  if (z < 0) return 2 - erfc(-z);
  if (z < SERIES_LIMIT) return 1 - erfSeries(z);
  if (z > 27) return 0;
  return Math.exp(-z * z) * erfcxContinuedFraction(z);
}

/** Log of the standard normal density. */
export function normLogPdf(x: number): number {
  return -0.5 * x * x - LOG_SQRT_2PI;
}

/** The standard normal distribution function Φ(x). */
export function ndtr(x: number): number {
  const t = x * Math.SQRT1_2;
  return x > 0 ? 1 - 0.5 * erfc(t) : 0.5 * erfc(-t);
}

/** log Φ(x), finite for every finite x (no underflow in the lower tail). */
export function logNdtr(x: number): number {
  if (x === Number.POSITIVE_INFINITY) return 0;
  if (x === Number.NEGATIVE_INFINITY) return Number.NEGATIVE_INFINITY;
  if (x > 0) return Math.log1p(-0.5 * erfc(x * Math.SQRT1_2));
  const t = -x * Math.SQRT1_2;
  if (t < SERIES_LIMIT) return Math.log(0.5 * (1 - erfSeries(t)));
  return LOG_HALF - t * t + Math.log(erfcxContinuedFraction(t));
}

/** log(1 − e^d) for d ≤ 0, accurate near 0 and for very negative d. */
function log1mExp(d: number): number {
  return d > -Math.LN2 ? Math.log(-Math.expm1(d)) : Math.log1p(-Math.exp(d));
}

/** log(e^x + e^y) without overflow. */
export function logAddExp(x: number, y: number): number {
  const m = Math.max(x, y);
  if (m === Number.NEGATIVE_INFINITY) return m;
  return m + Math.log1p(Math.exp(-Math.abs(x - y)));
}

/** log(Φ(b) − Φ(a)) for a ≤ b: the log probability mass of [a, b] under the standard normal. */
export function logGaussMass(a: number, b: number): number {
  if (!(a < b)) return Number.NEGATIVE_INFINITY;
  if (b <= 0) {
    const lb = logNdtr(b);
    return lb + log1mExp(logNdtr(a) - lb);
  }
  if (a >= 0) {
    const la = logNdtr(-a);
    return la + log1mExp(logNdtr(-b) - la);
  }
  return Math.log1p(-ndtr(a) - ndtr(-b));
}

// Acklam's rational approximation of the normal quantile (relative error < 1.2e-9): the
// starting point that `ndtriExp` refines with Newton steps.
const ACKLAM_A = [
  -3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2,
  -3.066479806614716e1, 2.506628277459239,
] as const;
const ACKLAM_B = [
  -5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1,
  -1.328068155288572e1,
] as const;
const ACKLAM_C = [
  -7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734,
  4.374664141464968, 2.938163982698783,
] as const;
const ACKLAM_D = [
  7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416,
] as const;

function acklam(p: number): number {
  const [a0, a1, a2, a3, a4, a5] = ACKLAM_A;
  const [b0, b1, b2, b3, b4] = ACKLAM_B;
  const [c0, c1, c2, c3, c4, c5] = ACKLAM_C;
  const [d0, d1, d2, d3] = ACKLAM_D;
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) /
      ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
    );
  }
  if (p > 1 - 0.02425) return -acklam(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) /
    (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
  );
}

/** The x with log Φ(x) = y (y ≤ 0): the normal quantile of e^y, without forming e^y. */
export function ndtriExp(y: number): number {
  if (Number.isNaN(y) || y > 0) return Number.NaN;
  if (y === 0) return Number.POSITIVE_INFINITY;
  if (y === Number.NEGATIVE_INFINITY) return Number.NEGATIVE_INFINITY;
  if (y > LOG_HALF) {
    // Upper half: solve log Φ(−x) = log(1 − e^y) so that the small tail keeps its digits.
    const target = Math.log(-Math.expm1(y));
    let x = -acklam(Math.exp(target));
    for (let i = 0; i < 20; i++) {
      const lt = logNdtr(-x);
      const step = (lt - target) / Math.exp(normLogPdf(x) - lt);
      x += step;
      if (Math.abs(step) <= 1e-15 * Math.max(1, Math.abs(x))) break;
    }
    return x;
  }
  let x: number;
  if (y < -700) {
    const s = -2 * y;
    x = -Math.sqrt(s - Math.log(s) - Math.log(2 * Math.PI));
  } else {
    x = acklam(Math.exp(y));
  }
  for (let i = 0; i < 50; i++) {
    const lp = logNdtr(x);
    const step = (lp - y) / Math.exp(normLogPdf(x) - lp);
    x -= step;
    if (Math.abs(step) <= 1e-15 * Math.max(1, Math.abs(x))) break;
  }
  return x;
}

/**
 * The quantile function of the standard normal truncated to [a, b]: the x in [a, b] with
 * P(a ≤ X ≤ x) = q·P(a ≤ X ≤ b).
 */
export function truncNormPpf(q: number, a: number, b: number): number {
  if (q <= 0) return a;
  if (q >= 1) return b;
  const logMass = logGaussMass(a, b);
  // Solve in whichever tail the answer lies, so that its small probability keeps its digits.
  const logLower = a < 0 ? logAddExp(logNdtr(a), Math.log(q) + logMass) : 0;
  const x =
    logLower < LOG_HALF
      ? ndtriExp(logLower)
      : -ndtriExp(logAddExp(logNdtr(-b), Math.log1p(-q) + logMass));
  return Math.min(Math.max(x, a), b);
}

/** The distribution function of the standard normal truncated to [a, b]. */
export function truncNormCdf(x: number, a: number, b: number): number {
  if (x <= a) return 0;
  if (x >= b) return 1;
  return Math.exp(logGaussMass(a, x) - logGaussMass(a, b));
}

/**
 * Log density at `x` of the normal with mean `loc` and standard deviation `scale`,
 * truncated to [a, b] given in standard units ((bound − loc) / scale), as scipy's
 * `truncnorm.logpdf(x, a, b, loc, scale)`.
 */
export function truncNormLogPdf(x: number, a: number, b: number, loc = 0, scale = 1): number {
  const u = (x - loc) / scale;
  if (u < a || u > b) return Number.NEGATIVE_INFINITY;
  return normLogPdf(u) - logGaussMass(a, b) - Math.log(scale);
}
