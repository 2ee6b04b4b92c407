import { GPU_TIERS, MODAL_GPU_NAMES } from "@tmgg/core";

export { GPU_TIERS, MODAL_GPU_NAMES };

const MAX_GPUS = 8;

function unknownGpu(gpuType: string, why: string): Error {
  return new RangeError(
    `[modal-runner] GPU type ${JSON.stringify(gpuType)} ${why}; use a tier (${Object.keys(GPU_TIERS).join(", ")}), ` +
      `cpu, or one of Modal's GPUs ${MODAL_GPU_NAMES.join(", ")}, optionally with ":N" for N GPUs (1-${MAX_GPUS})`,
  );
}

/**
 * The GPU string Modal's `sandboxes.create({ gpu })` takes for a stage's `gpu_type`, or
 * undefined for `cpu` (no GPU). Tiers map to the original module's GPUs; Modal names are
 * case-insensitive and may carry `:N`. Anything else throws, naming the valid types.
 *
 * @example
 * modalGpu("standard") // "A10G"
 * modalGpu("multi")    // "A100:2"
 * modalGpu("h100:4")   // "H100:4"
 * modalGpu("cpu")      // undefined
 */
export function modalGpu(gpuType: string): string | undefined {
  const [rawName = "", rawCount, ...rest] = gpuType.trim().split(":");
  if (rest.length > 0) throw unknownGpu(gpuType, "has more than one ':'");
  let count: number | undefined;
  if (rawCount !== undefined) {
    count = Number(rawCount);
    if (!/^\d+$/.test(rawCount) || count < 1 || count > MAX_GPUS) {
      throw unknownGpu(gpuType, `asks for ${JSON.stringify(rawCount)} GPUs`);
    }
  }
  const lower = rawName.toLowerCase();
  if (lower === "cpu") {
    if (count !== undefined) throw unknownGpu(gpuType, "gives a GPU count to cpu");
    return undefined;
  }
  const tier = GPU_TIERS[lower];
  if (tier !== undefined) {
    if (count === undefined) return tier;
    if (tier.includes(":"))
      throw unknownGpu(gpuType, `gives a GPU count to the ${lower} tier, which is ${tier}`);
    return `${tier}:${count}`;
  }
  const name = MODAL_GPU_NAMES.find((known) => known.toLowerCase() === lower);
  if (name === undefined) throw unknownGpu(gpuType, "is unknown");
  return count === undefined ? name : `${name}:${count}`;
}
