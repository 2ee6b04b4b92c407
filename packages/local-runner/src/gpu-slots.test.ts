import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { GpuSlots, checkGpuAmount, detectGpus } from "./gpu-slots.ts";

describe("GpuSlots", () => {
  it("hands out free devices at once and queues requests in order until devices come back", async () => {
    const slots = new GpuSlots(["0", "1", "2"]);
    expect(await slots.request(2).devices).toEqual(["0", "1"]);
    const big = slots.request(2);
    const small = slots.request(1);
    let smallDevices: string[] | null | undefined;
    void small.devices.then((devices) => (smallDevices = devices));
    await Promise.resolve();
    expect(smallDevices).toBeUndefined(); // first come, first served: it waits behind the bigger request

    slots.release(["0", "1"]);
    expect(await big.devices).toEqual(["0", "1"]);
    expect(await small.devices).toEqual(["2"]);
    expect(slots.freeCount).toBe(0);
  });

  it("lets a waiting request withdraw, which serves the ones behind it", async () => {
    const slots = new GpuSlots(["a"]);
    const held = await slots.request(1).devices;
    const first = slots.request(1);
    const second = slots.request(1);
    expect(first.withdraw()).toBe(true);
    expect(await first.devices).toBeNull();
    expect(first.withdraw()).toBe(false);
    slots.release(held!);
    expect(await second.devices).toEqual(["a"]);
  });
});

describe("GpuSlots with shares of a GPU", () => {
  it("packs four 0.25 runs onto each GPU, spread over the GPUs first, and queues the ninth", async () => {
    const slots = new GpuSlots(["0", "1"]);
    const granted: string[] = [];
    for (let i = 0; i < 8; i++) granted.push(...((await slots.request(0.25).devices) ?? []));
    expect(granted).toEqual(["0", "1", "0", "1", "0", "1", "0", "1"]);
    expect(slots.freeCapacity).toBe(0);
    const ninth = slots.request(0.25);
    let devices: string[] | null | undefined;
    void ninth.devices.then((d) => (devices = d));
    await Promise.resolve();
    expect(devices).toBeUndefined();
    slots.release(["1"], 0.25);
    expect(await ninth.devices).toEqual(["1"]);
  });

  it("keeps shares of different sizes within one GPU's capacity", async () => {
    const slots = new GpuSlots(["0"]);
    expect(await slots.request(0.5).devices).toEqual(["0"]);
    expect(await slots.request(0.3).devices).toEqual(["0"]);
    expect(slots.freeCapacity).toBeCloseTo(0.2);
    const big = slots.request(0.5);
    const small = slots.request(0.1);
    let smallDevices: string[] | null | undefined;
    void small.devices.then((d) => (smallDevices = d));
    await Promise.resolve();
    expect(smallDevices).toBeUndefined(); // first come, first served: behind the 0.5
    slots.release(["0"], 0.3);
    expect(await big.devices).toEqual(["0"]);
    await Promise.resolve();
    expect(smallDevices).toBeUndefined(); // 0.5 + 0.5 held: no room for 0.1
    slots.release(["0"], 0.5);
    expect(await small.devices).toEqual(["0"]);
    expect(slots.freeCapacity).toBeCloseTo(0.4);
  });

  it("gives a whole GPU only once no share of it is held", async () => {
    const slots = new GpuSlots(["0", "1"]);
    await slots.request(0.5).devices; // on 0
    expect(await slots.request(1).devices).toEqual(["1"]);
    const whole = slots.request(1);
    let wholeDevices: string[] | null | undefined;
    void whole.devices.then((d) => (wholeDevices = d));
    await Promise.resolve();
    expect(wholeDevices).toBeUndefined(); // half of 0 is free, but not all of it
    expect(slots.freeCount).toBe(0);
    slots.release(["0"], 0.5);
    expect(await whole.devices).toEqual(["0"]);
  });

  it("accepts whole numbers and shares between 0 and 1, nothing else", () => {
    for (const good of [1, 2, 8, 0.5, 0.25, 1 / 3, 0.001]) expect(() => checkGpuAmount(good)).not.toThrow();
    for (const bad of [0, -1, 1.5, 2.25, Number.NaN, Infinity, 0.0001]) {
      expect(() => checkGpuAmount(bad), String(bad)).toThrow(
        /\[local-runner\] amount must be a whole number of GPUs \(1, 2, …\) or a share of one GPU between 0 and 1/,
      );
    }
  });
});

describe("detectGpus", () => {
  it("takes the ids in CUDA_VISIBLE_DEVICES when it is set", async () => {
    expect(await detectGpus({ CUDA_VISIBLE_DEVICES: "2, 3" })).toEqual(["2", "3"]);
    expect(await detectGpus({ CUDA_VISIBLE_DEVICES: "" })).toEqual([]);
    expect(await detectGpus({ CUDA_VISIBLE_DEVICES: "-1" })).toEqual([]);
  });

  it("lists the GPUs nvidia-smi -L reports, and none where nvidia-smi is missing", async () => {
    const bin = await mkdtemp(path.join(tmpdir(), "fake-nvidia-smi-"));
    try {
      expect(await detectGpus({ PATH: bin })).toEqual([]);
      const script = path.join(bin, "nvidia-smi");
      await writeFile(
        script,
        [
          "#!/bin/sh",
          'test "$1" = "-L" || exit 9',
          'echo "GPU 0: NVIDIA A10G (UUID: GPU-aaaa)"',
          'echo "GPU 1: NVIDIA A10G (UUID: GPU-bbbb)"',
          "",
        ].join("\n"),
      );
      await chmod(script, 0o755);
      expect(await detectGpus({ PATH: bin })).toEqual(["0", "1"]);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });
});
