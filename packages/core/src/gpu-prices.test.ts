import { describe, expect, it } from "vitest";
import {
  GPU_PRICES_AS_OF,
  MODAL_GPU_PRICES_USD_PER_HOUR,
  estimateCostUsd,
  estimateRunsCostUsd,
} from "./gpu-prices.ts";

describe("estimateCostUsd", () => {
  it("prices seconds on one GPU from the dated list", () => {
    expect(GPU_PRICES_AS_OF).toMatch(/^2026-/);
    expect(estimateCostUsd("T4", 3600)).toBeCloseTo(0.5904, 6);
    expect(estimateCostUsd("H100", 1800)).toBeCloseTo(3.9492 / 2, 6);
  });

  it("multiplies by the GPU count of TYPE:N", () => {
    expect(estimateCostUsd("H100:2", 3600)).toBeCloseTo(2 * 3.9492, 6);
  });

  it("reads names case-insensitively and maps Modal's other spellings and the original tiers", () => {
    expect(estimateCostUsd("a10g", 3600)).toBeCloseTo(MODAL_GPU_PRICES_USD_PER_HOUR["A10G"]!, 6);
    expect(estimateCostUsd("A10", 3600)).toBe(estimateCostUsd("A10G", 3600));
    expect(estimateCostUsd("A100", 3600)).toBe(estimateCostUsd("A100-40GB", 3600));
    expect(estimateCostUsd("standard", 3600)).toBe(estimateCostUsd("A10G", 3600));
    expect(estimateCostUsd("debug", 3600)).toBe(estimateCostUsd("T4", 3600));
    expect(estimateCostUsd("multi", 3600)).toBeCloseTo(
      2 * MODAL_GPU_PRICES_USD_PER_HOUR["A100-40GB"]!,
      6,
    );
    expect(estimateCostUsd("h100", 3600)).toBe(estimateCostUsd("H100", 3600));
  });

  it("lets overrides win over the table, for Modal names and tiers alike", () => {
    expect(estimateCostUsd("A10G", 3600, { a10g: 0.9 })).toBeCloseTo(0.9, 6);
    expect(estimateCostUsd("standard", 3600, { STANDARD: 0.5 })).toBeCloseTo(0.5, 6);
    expect(estimateCostUsd("RTX-PRO-6000", 3600, { "RTX-PRO-6000": 3 })).toBeCloseTo(3, 6);
  });

  it("gives no GPU cost for cpu and null for what it cannot price", () => {
    expect(estimateCostUsd("cpu", 3600)).toBe(0);
    expect(estimateCostUsd("RTX-PRO-6000", 3600)).toBeNull();
    expect(estimateCostUsd("TPU-v5", 3600)).toBeNull();
    expect(estimateCostUsd("T4:0", 3600)).toBeNull();
    expect(estimateCostUsd("T4", -1)).toBeNull();
  });
});

describe("estimateRunsCostUsd", () => {
  it("sums the runs that ran on Modal and ignores the others", () => {
    const cost = estimateRunsCostUsd([
      { backend: "modal", gpuType: "T4", durationSeconds: 3600 },
      { backend: "modal", gpuType: "H100:2", durationSeconds: 1800 },
      { backend: "local", gpuType: "H100", durationSeconds: 36_000 },
    ]);
    expect(cost).toBeCloseTo(0.5904 + 3.9492, 6);
  });

  it("answers null when no run could be priced", () => {
    expect(
      estimateRunsCostUsd([{ backend: "local", gpuType: "T4", durationSeconds: 60 }]),
    ).toBeNull();
    expect(estimateRunsCostUsd([])).toBeNull();
  });
});
