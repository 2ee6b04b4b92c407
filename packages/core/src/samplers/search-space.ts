import type { Hyperparameter } from "../schemas.ts";

/** One parameter of a search space. `step` puts a float on a grid; an int's step defaults to 1. */
export type ParamSpec =
  | { kind: "float"; low: number; high: number; log?: boolean; step?: number }
  | { kind: "int"; low: number; high: number; log?: boolean; step?: number }
  | { kind: "categorical"; choices: readonly unknown[] };

/** Parameters by name (dotted config keys). */
export type SearchSpace = Record<string, ParamSpec>;

/**
 * A stage's `hyperparameter_space` as a search space: a list becomes a categorical
 * parameter; a range `{low, high, log?, step?}` becomes an int parameter when low, high and
 * step are all integers, else a float.
 *
 * @example
 * searchSpaceFromStage({ lr: { low: 1e-5, high: 1e-1, log: true }, layers: { low: 2, high: 8, step: 2 } });
 * // { lr: { kind: "float", low: 1e-5, high: 0.1, log: true }, layers: { kind: "int", low: 2, high: 8, step: 2 } }
 */
export function searchSpaceFromStage(space: Record<string, Hyperparameter>): SearchSpace {
  const result: SearchSpace = {};
  for (const [name, hyperparameter] of Object.entries(space)) {
    if (Array.isArray(hyperparameter)) {
      result[name] = { kind: "categorical", choices: hyperparameter };
      continue;
    }
    const { low, high, log, step } = hyperparameter;
    const isInt =
      step !== undefined &&
      Number.isInteger(low) &&
      Number.isInteger(high) &&
      Number.isInteger(step);
    result[name] = {
      kind: isInt ? "int" : "float",
      low,
      high,
      ...(log === undefined ? {} : { log }),
      ...(step === undefined ? {} : { step }),
    };
  }
  return result;
}

/** A float without a step, sampled in z = x or z = ln x. */
export interface ContinuousDimension {
  type: "continuous";
  name: string;
  low: number;
  high: number;
  isLog: boolean;
  /** Bounds in z space. */
  zLow: number;
  zHigh: number;
}

/** An int, or a float with a step: the values low + k·step, k = 0 … count − 1. */
export interface DiscreteDimension {
  type: "discrete";
  name: string;
  low: number;
  /** The largest grid value (low + (count − 1)·step), at most the spec's high. */
  high: number;
  step: number;
  count: number;
  isLog: boolean;
  isInt: boolean;
  /** Bounds in z space of the range widened by step/2 on each side. */
  zLow: number;
  zHigh: number;
}

export interface CategoricalDimension {
  type: "categorical";
  name: string;
  choices: readonly unknown[];
  /** Canonical JSON of each choice, to recognize a value that came back through a file. */
  keys: readonly string[];
}

export type Dimension = ContinuousDimension | DiscreteDimension | CategoricalDimension;

function spaceError(name: string, message: string): Error {
  return new Error(`[core] search space: parameter "${name}": ${message}`);
}

/** JSON with object keys sorted, so equal values give equal strings. */
export function canonicalKey(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const record = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(record)
        .sort()
        .map((k) => [k, record[k]]),
    );
  });
}

function compileDimension(name: string, spec: ParamSpec): Dimension {
  if (spec.kind === "categorical") {
    if (spec.choices.length === 0)
      throw spaceError(name, "a categorical needs at least one choice");
    return {
      type: "categorical",
      name,
      choices: spec.choices,
      keys: spec.choices.map(canonicalKey),
    };
  }
  const { low, high } = spec;
  const isLog = spec.log === true;
  if (!Number.isFinite(low) || !Number.isFinite(high) || !(high > low)) {
    throw spaceError(name, `needs finite low < high, got low=${low}, high=${high}`);
  }
  if (isLog && !(low > 0)) throw spaceError(name, `a log range needs low > 0, got low=${low}`);
  const step = spec.kind === "int" ? (spec.step ?? 1) : spec.step;
  if (step !== undefined && !(step > 0 && Number.isFinite(step))) {
    throw spaceError(name, `step must be a positive number, got ${step}`);
  }
  if (
    spec.kind === "int" &&
    !(Number.isInteger(low) && Number.isInteger(high) && Number.isInteger(step))
  ) {
    throw spaceError(
      name,
      `an int parameter needs integer low, high and step, got low=${low}, high=${high}, step=${step}`,
    );
  }
  const z = isLog ? Math.log : (x: number) => x;
  if (step === undefined) {
    return { type: "continuous", name, low, high, isLog, zLow: z(low), zHigh: z(high) };
  }
  const count = Math.floor((high - low) / step + 1e-9) + 1;
  const gridHigh = tidy(low + (count - 1) * step, spec.kind === "int");
  // In log space the widened lower edge must stay positive.
  const edgeLow = low - step / 2 > 0 || !isLog ? low - step / 2 : low / 2;
  return {
    type: "discrete",
    name,
    low,
    high: gridHigh,
    step,
    count,
    isLog,
    isInt: spec.kind === "int",
    zLow: z(edgeLow),
    zHigh: z(gridHigh + step / 2),
  };
}

/** Round away floating-point noise of low + k·step (0.30000000000000004 → 0.3). */
function tidy(value: number, isInt: boolean): number {
  return isInt ? Math.round(value) : Number(value.toPrecision(12));
}

/** The dimensions of a space, validated, in a fixed order (by name) whatever the key order. */
export function compileSearchSpace(space: SearchSpace): Dimension[] {
  return Object.keys(space)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => compileDimension(name, space[name] as ParamSpec));
}

/** z of a discrete dimension's k-th grid value. */
export function discreteZ(dim: DiscreteDimension, k: number): number {
  const x = dim.low + k * dim.step;
  return dim.isLog ? Math.log(x) : x;
}

/**
 * The internal value of a parameter value: z for a continuous dimension, the grid index for
 * a discrete one, the choice index for a categorical one; undefined when the value does not
 * belong to the dimension (a study whose space changed), so the trial is left out.
 */
export function encodeValue(dim: Dimension, value: unknown): number | undefined {
  if (dim.type === "categorical") {
    const index = dim.choices.indexOf(value);
    if (index >= 0) return index;
    const key = canonicalKey(value);
    const byKey = dim.keys.indexOf(key);
    return byKey >= 0 ? byKey : undefined;
  }
  if (typeof value !== "number" || !Number.isFinite(value)) return undefined;
  if (dim.type === "continuous") {
    const tolerance = 1e-9 * (dim.high - dim.low);
    if (value < dim.low - tolerance || value > dim.high + tolerance) return undefined;
    const clipped = Math.min(Math.max(value, dim.low), dim.high);
    return dim.isLog ? Math.log(clipped) : clipped;
  }
  const k = Math.round((value - dim.low) / dim.step);
  if (k < 0 || k >= dim.count) return undefined;
  return k;
}

/** The parameter value of an internal value (see `encodeValue`). */
export function decodeValue(dim: Dimension, internal: number): unknown {
  if (dim.type === "categorical") return dim.choices[internal];
  if (dim.type === "discrete") return tidy(dim.low + internal * dim.step, dim.isInt);
  const x = dim.isLog ? Math.exp(internal) : internal;
  return Math.min(Math.max(x, dim.low), dim.high);
}

/** The grid index of a point z of a discrete dimension's widened range. */
export function snapToGrid(dim: DiscreteDimension, z: number): number {
  const x = dim.isLog ? Math.exp(z) : z;
  const k = Math.round((x - dim.low) / dim.step);
  return Math.min(Math.max(k, 0), dim.count - 1);
}

/**
 * The internal value at quantile u ∈ [0, 1) of a dimension's uniform prior: uniform in z
 * (so log-uniform for log parameters), snapped to the grid for discrete dimensions.
 */
export function internalFromUnit(dim: Dimension, u: number): number {
  if (dim.type === "categorical")
    return Math.min(Math.floor(u * dim.choices.length), dim.choices.length - 1);
  const z = dim.zLow + u * (dim.zHigh - dim.zLow);
  return dim.type === "discrete" ? snapToGrid(dim, z) : z;
}

/** The values of internal coordinates as the parameter object, keys in the space's own order. */
export function decodePoint(
  space: SearchSpace,
  dims: readonly Dimension[],
  internal: readonly number[],
): Record<string, unknown> {
  const byName = new Map<string, unknown>();
  dims.forEach((dim, i) => byName.set(dim.name, decodeValue(dim, internal[i] as number)));
  return Object.fromEntries(Object.keys(space).map((name) => [name, byName.get(name)]));
}
