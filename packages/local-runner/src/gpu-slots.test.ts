import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { GpuSlots, detectGpus } from "./gpu-slots.ts";

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
