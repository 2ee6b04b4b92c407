import { describe, expect, it } from "vitest";
import { toDisk, toDiskJson, toDiskJsonChunks } from "./schemas.ts";

describe("toDiskJson", () => {
  it("renames keys to snake_case as it writes, except inside user data, like JSON.stringify(toDisk(…))", () => {
    const value = {
      stageName: "s",
      experiments: [
        {
          runId: "r",
          config: {
            learningRate: 0.1,
            model: { numLayers: 2, blockList: [{ hiddenDim: 8 }, [{ innerKey: 1 }]] },
          },
          metrics: { valLoss: 0.5 },
          errorMessage: null,
          skipMe: undefined,
          nestedRows: [{ someKey: 1 }, [{ otherKey: 2 }]],
        },
      ],
      bestConfig: { learningRate: 0.1 },
      hyperparameterSpace: { learningRate: [0.1, { stepSize: 2 }] },
    };
    const text = toDiskJson(value);
    expect(text).toBe(`${JSON.stringify(toDisk(value), null, 2)}\n`);
    expect([...toDiskJsonChunks(value, 10)].join("")).toBe(text);
    expect(JSON.parse(text)).toEqual({
      stage_name: "s",
      experiments: [
        {
          run_id: "r",
          config: {
            learningRate: 0.1,
            model: { numLayers: 2, blockList: [{ hiddenDim: 8 }, [{ innerKey: 1 }]] },
          },
          metrics: { valLoss: 0.5 },
          error_message: null,
          nested_rows: [{ some_key: 1 }, [{ other_key: 2 }]],
        },
      ],
      best_config: { learningRate: 0.1 },
      hyperparameter_space: { learningRate: [0.1, { stepSize: 2 }] },
    });
  });

  it("writes the same text as JSON.stringify for empty, missing and top-level values, whole or in pieces", () => {
    const values: unknown[] = [
      {},
      [],
      null,
      "text",
      3,
      {
        emptyList: [],
        emptyObject: {},
        gone: undefined,
        fn: () => 1,
        list: [undefined, () => 1, 1],
      },
      {
        experiments: [{ runId: "a" }, { runId: "b", config: { aB: { cD: 1 } } }],
        bestConfig: [{ aB: 1 }],
        metrics: { xY: 1 },
      },
      [{ runId: "a" }, [{ runId: "b" }]],
    ];
    for (const value of values) {
      const text = toDiskJson(value);
      expect(text).toBe(`${JSON.stringify(toDisk(value), null, 2)}\n`);
      const chunks = [...toDiskJsonChunks(value, 8)];
      expect(chunks.join("")).toBe(text);
    }
    const big = {
      experiments: Array.from({ length: 2000 }, (_, i) => ({
        runId: `run-${i}`,
        config: { learningRate: i },
      })),
    };
    const chunks = [...toDiskJsonChunks(big)];
    expect(chunks.length).toBeGreaterThan(1);
    expect(Math.max(...chunks.map((chunk) => chunk.length))).toBeLessThan(64 * 1024 + 1000);
    expect(chunks.join("")).toBe(`${JSON.stringify(toDisk(big), null, 2)}\n`);
  });
});
