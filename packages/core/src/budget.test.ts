import { describe, expect, it } from "vitest";
import { BudgetGuard, estimateBudget, gpusOfRun, runCostUsd } from "./budget.ts";
import { ConfigError } from "./config-error.ts";

const HOUR = 3600;

describe("gpusOfRun", () => {
  it("counts the GPUs of a gpu_type, a tier's own count, none for cpu, and a given share", () => {
    expect(gpusOfRun("A10G")).toBe(1);
    expect(gpusOfRun("H100:4")).toBe(4);
    expect(gpusOfRun("multi")).toBe(2);
    expect(gpusOfRun("standard")).toBe(1);
    expect(gpusOfRun("cpu")).toBe(0);
    expect(gpusOfRun("A10G", 0.25)).toBe(0.25);
  });
});

describe("runCostUsd", () => {
  it("prices runs at the table, your prices over it, and local runs at 0 USD", () => {
    expect(runCostUsd("modal", "A10G", HOUR)).toBeCloseTo(1.1);
    expect(runCostUsd("modal", "H100:2", HOUR / 2, { H100: 4 })).toBeCloseTo(4);
    expect(runCostUsd("local", "H100:8", HOUR)).toBe(0);
    expect(runCostUsd("modal", "RTX-PRO-6000", HOUR)).toBeNull();
  });
});

describe("estimateBudget", () => {
  it("prices the worst case at the timeout and the expected case at the stored mean duration", () => {
    const estimate = estimateBudget(
      { maxCostUsd: 10, maxGpuHours: 20 },
      { backend: "modal", gpuType: "A10G:2", timeoutSeconds: HOUR, gpus: 2 },
      24,
      HOUR / 10,
    );
    expect(estimate.worstCase.costUsd).toBeCloseTo(24 * 2 * 1.1);
    expect(estimate.worstCase.gpuHours).toBeCloseTo(48);
    expect(estimate.expected?.costUsd).toBeCloseTo(24 * 2 * 1.1 * 0.1);
    expect(estimate.expected?.gpuHours).toBeCloseTo(4.8);
    // $2.20 and 2 GPU-hours per run at worst: 4 runs fit under $10, 10 under 20 GPU-hours
    expect(estimate.runsAtOnce).toBe(4);
    expect(estimate.mayStopEarly).toBe(true);
    const free = estimateBudget(
      { maxCostUsd: 10 },
      { backend: "local", gpuType: "A10G", timeoutSeconds: HOUR, gpus: 1 },
      24,
    );
    expect(free).toMatchObject({ runsAtOnce: null, mayStopEarly: false, expected: null });
    expect(free.worstCase).toEqual({ costUsd: 0, gpuHours: 24 });
  });
});

describe("BudgetGuard", () => {
  const model = { backend: "local", gpuType: "A10G", timeoutSeconds: HOUR, gpus: 1 };

  it("starts a run only while spent + runs in flight at their timeout + the new run fit", async () => {
    const guard = new BudgetGuard({ maxGpuHours: 2 }, model);
    const first = await guard.reserve();
    const second = await guard.reserve();
    expect(first && second).toBeTruthy();
    let third: Awaited<ReturnType<BudgetGuard["reserve"]>> | undefined;
    const waiting = guard.reserve().then((hold) => (third = hold));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(third).toBeUndefined(); // 2 GPU-hours are held by the two runs in flight
    guard.settle(first!, HOUR / 2); // spent 0.5 + held 1 + next 1 > 2: still waiting
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(third).toBeUndefined();
    guard.settle(second!, HOUR / 2); // spent 1 + next 1 = 2: fits
    await waiting;
    expect(third).not.toBeNull();
    guard.settle(third!, HOUR); // spent 2: nothing fits and nothing is in flight
    expect(await guard.reserve()).toBeNull();
    expect(guard.isStopped).toBe(true);
    expect(guard.spent).toEqual({ costUsd: 0, gpuHours: 2 });
    expect(guard.report(["r1", "r2"])).toEqual({
      limit: { costUsd: null, gpuHours: 2 },
      spent: { costUsd: 0, gpuHours: 2 },
      stoppedEarly: true,
      notStarted: 2,
      notStartedRuns: ["r1", "r2"],
    });
  });

  it("gives a reservation back whole when its run never started", async () => {
    const guard = new BudgetGuard({ maxCostUsd: 1.5 }, { ...model, backend: "modal" });
    const hold = await guard.reserve();
    guard.settle(hold!, undefined);
    guard.settle(hold!, HOUR); // settling twice changes nothing
    expect(guard.spent.costUsd).toBe(0);
    expect(guard.inFlight).toBe(0);
    expect(await guard.reserve()).not.toBeNull();
  });

  it("never stops without a cap, and stops waiting when the signal aborts", async () => {
    const open = new BudgetGuard({}, model);
    for (let i = 0; i < 100; i++) expect(await open.reserve()).not.toBeNull();
    expect(open.isLimited).toBe(false);
    const guard = new BudgetGuard({ maxGpuHours: 1 }, model);
    await guard.reserve();
    const controller = new AbortController();
    const waiting = guard.reserve(controller.signal);
    controller.abort();
    expect(await waiting).toBeNull();
    expect(guard.isStopped).toBe(false);
  });

  it("refuses a cost cap for a GPU without a price, and caps that are not positive numbers", () => {
    expect(
      () =>
        new BudgetGuard({ maxCostUsd: 5 }, { ...model, backend: "modal", gpuType: "RTX-PRO-6000" }),
    ).toThrow(/max_cost_usd is set but gpu_type "RTX-PRO-6000" has no price.*gpuPricesUsdPerHour/);
    expect(
      () =>
        new BudgetGuard({ maxCostUsd: 5 }, { ...model, backend: "modal", gpuType: "RTX-PRO-6000" }),
    ).toThrow(ConfigError);
    expect(() => new BudgetGuard({ maxGpuHours: 0 }, model)).toThrow(
      /maxGpuHours must be a positive number, got 0/,
    );
  });
});
