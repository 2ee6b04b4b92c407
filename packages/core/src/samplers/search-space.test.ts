import { describe, expect, it } from "vitest";
import { hyperparameterSchema } from "../schemas.ts";
import {
  compileSearchSpace,
  decodeValue,
  encodeValue,
  internalFromUnit,
  searchSpaceFromStage,
} from "./search-space.ts";
import type { SearchSpace } from "./search-space.ts";

describe("searchSpaceFromStage", () => {
  it("turns lists into categoricals and ranges into int or float parameters", () => {
    const stage = {
      "model.noise_levels": [[0.01], [0.05]],
      optimizer: ["adam", "sgd"],
      weight_decay: { low: 1e-6, high: 1e-2, log: true },
      "model.hidden": { low: 32, high: 256, step: 32 },
      "model.dropout": { low: 0, high: 0.5, step: 0.1 },
      "model.layers": { low: 1, high: 8 },
    };
    const parsed = Object.fromEntries(
      Object.entries(stage).map(([key, value]) => [key, hyperparameterSchema.parse(value)]),
    );
    expect(searchSpaceFromStage(parsed)).toEqual({
      "model.noise_levels": { kind: "categorical", choices: [[0.01], [0.05]] },
      optimizer: { kind: "categorical", choices: ["adam", "sgd"] },
      weight_decay: { kind: "float", low: 1e-6, high: 1e-2, log: true },
      "model.hidden": { kind: "int", low: 32, high: 256, step: 32 },
      "model.dropout": { kind: "float", low: 0, high: 0.5, step: 0.1 },
      // integers without a step stay a float range: a step makes the grid explicit
      "model.layers": { kind: "float", low: 1, high: 8 },
    });
  });
});

describe("compileSearchSpace", () => {
  it.each<[SearchSpace, string]>([
    [{ lr: { kind: "float", low: 1, high: 1 } }, 'parameter "lr": needs finite low < high'],
    [
      { lr: { kind: "float", low: 0, high: 1, log: true } },
      'parameter "lr": a log range needs low > 0',
    ],
    [
      { lr: { kind: "float", low: 0, high: 1, step: 0 } },
      'parameter "lr": step must be a positive number',
    ],
    [
      { n: { kind: "int", low: 0.5, high: 4 } },
      'parameter "n": an int parameter needs integer low, high and step',
    ],
    [
      { opt: { kind: "categorical", choices: [] } },
      'parameter "opt": a categorical needs at least one choice',
    ],
  ])("rejects an invalid parameter and names it", (space, message) => {
    expect(() => compileSearchSpace(space)).toThrow(message);
  });

  it("orders dimensions by name whatever the key order", () => {
    const names = compileSearchSpace({
      b: { kind: "float", low: 0, high: 1 },
      a: { kind: "float", low: 0, high: 1 },
    }).map((dim) => dim.name);
    expect(names).toEqual(["a", "b"]);
  });

  it("keeps a step grid inside high when high is not on the grid", () => {
    const [dim] = compileSearchSpace({ n: { kind: "int", low: 1, high: 10, step: 4 } });
    expect(dim).toMatchObject({ type: "discrete", count: 3, high: 9 });
    expect([0, 0.5, 0.999].map((u) => decodeValue(dim!, internalFromUnit(dim!, u)))).toEqual([
      1, 5, 9,
    ]);
  });
});

describe("encodeValue and decodeValue", () => {
  const dims = compileSearchSpace({
    dropout: { kind: "float", low: 0, high: 0.5, step: 0.1 },
    lr: { kind: "float", low: 1e-5, high: 1e-1, log: true },
    noise: { kind: "categorical", choices: [[0.01], [0.05], { a: 1, b: 2 }] },
  });
  const [dropout, lr, noise] = dims as [(typeof dims)[0], (typeof dims)[0], (typeof dims)[0]];

  it("gives grid values without floating-point noise", () => {
    expect(Array.from({ length: 6 }, (_, k) => decodeValue(dropout, k))).toEqual([
      0, 0.1, 0.2, 0.3, 0.4, 0.5,
    ]);
  });

  it("round-trips log values through z = ln x", () => {
    expect(encodeValue(lr, 1e-3)).toBeCloseTo(Math.log(1e-3), 12);
    expect(decodeValue(lr, Math.log(1e-3))).toBeCloseTo(1e-3, 15);
  });

  it("recognizes categorical values that came back through JSON", () => {
    expect(encodeValue(noise, JSON.parse("[0.05]"))).toBe(1);
    expect(encodeValue(noise, JSON.parse('{"b": 2, "a": 1}'))).toBe(2);
  });

  it("leaves out values that do not belong to the parameter", () => {
    expect(encodeValue(noise, [0.1])).toBeUndefined();
    expect(encodeValue(lr, 0.5)).toBeUndefined();
    expect(encodeValue(dropout, 0.9)).toBeUndefined();
    expect(encodeValue(dropout, "0.1")).toBeUndefined();
  });
});
