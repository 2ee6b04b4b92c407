import { describe, expect, it } from "vitest";
import { modalGpu } from "./gpu-type.ts";

describe("modalGpu", () => {
  it("maps the original module's tiers to their Modal GPUs", () => {
    expect(modalGpu("standard")).toBe("A10G");
    expect(modalGpu("debug")).toBe("T4");
    expect(modalGpu("fast")).toBe("A100-40GB");
    expect(modalGpu("multi")).toBe("A100:2");
    expect(modalGpu("h100")).toBe("H100");
    expect(modalGpu("standard:2")).toBe("A10G:2");
    expect(modalGpu("Standard")).toBe("A10G");
  });

  it("takes Modal's names in any case, with or without :N", () => {
    expect(modalGpu("A100-80GB:2")).toBe("A100-80GB:2");
    expect(modalGpu("a10g")).toBe("A10G");
    expect(modalGpu("H100!")).toBe("H100!");
    expect(modalGpu("H100:8")).toBe("H100:8");
  });

  it("answers undefined (no GPU) for cpu", () => {
    expect(modalGpu("cpu")).toBeUndefined();
  });

  it("refuses unknown types and bad counts, naming the valid ones", () => {
    expect(() => modalGpu("TPU")).toThrow(
      /GPU type "TPU" is unknown; use a tier \(standard, debug/,
    );
    expect(() => modalGpu("T4:0")).toThrow(/asks for "0" GPUs/);
    expect(() => modalGpu("T4:9")).toThrow(/1-8/);
    expect(() => modalGpu("T4:1:2")).toThrow(/more than one ':'/);
    expect(() => modalGpu("multi:4")).toThrow(/multi tier, which is A100:2/);
    expect(() => modalGpu("cpu:2")).toThrow(/count to cpu/);
  });
});
