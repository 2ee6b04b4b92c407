import { execa } from "execa";

/** A place in the queue for GPUs: `devices` resolves with the granted ids, or null once withdrawn. */
export interface GpuRequest {
  devices: Promise<string[] | null>;
  /** Leaves the queue; false when the devices were already granted. */
  withdraw(): boolean;
}

interface Waiter {
  /** Whole GPUs wanted, or 0 for a share of one. */
  whole: number;
  /** Units of one GPU wanted when `whole` is 0. */
  units: number;
  grant: (devices: string[] | null) => void;
}

/** A GPU's capacity in units: shares are counted in thousandths, so 4 × 0.25 is exactly one GPU. */
const UNITS = 1000;

/**
 * Throws unless `amount` is a whole number of GPUs (1, 2, …) or a share of one GPU
 * (0 < amount < 1, at least 0.001).
 */
export function checkGpuAmount(amount: number, what = "amount"): void {
  const isWhole = Number.isInteger(amount) && amount >= 1;
  const isShare = amount > 0 && amount < 1 && Math.round(amount * UNITS) >= 1;
  if (!isWhole && !isShare) {
    throw new RangeError(
      `[local-runner] ${what} must be a whole number of GPUs (1, 2, …) or a share of one GPU between 0 and 1 (0.5, 0.25), got ${amount}`,
    );
  }
}

/**
 * A pool of GPU device ids handed out first come, first served. A whole-number request
 * takes that many whole GPUs (lowest ids first) and waits until they are all free; a
 * share (0.5, 0.25, …) takes that part of one GPU, so several runs share it: each GPU
 * holds shares up to 1.0, and a share goes to the GPU with the most room left (so runs
 * spread over the GPUs before they double up).
 */
export class GpuSlots {
  readonly devices: readonly string[];
  /** Free units per device. */
  readonly #free: Map<string, number>;
  readonly #queue: Waiter[] = [];

  constructor(devices: readonly string[]) {
    this.devices = devices;
    this.#free = new Map(devices.map((device) => [device, UNITS]));
  }

  /** Devices no run holds any part of. */
  get freeCount(): number {
    let count = 0;
    for (const units of this.#free.values()) if (units === UNITS) count++;
    return count;
  }

  /** Free capacity over every device, in GPUs (2.5: two whole GPUs and half of another). */
  get freeCapacity(): number {
    let units = 0;
    for (const free of this.#free.values()) units += free;
    return units / UNITS;
  }

  /**
   * Asks for `amount` GPUs: a whole number 1 ≤ amount ≤ devices.length, or a share of one
   * GPU (0 < amount < 1). A share is granted as the one device it runs on.
   */
  request(amount: number): GpuRequest {
    checkGpuAmount(amount);
    const isShare = amount < 1;
    const waiter: Waiter = {
      whole: isShare ? 0 : amount,
      units: isShare ? Math.round(amount * UNITS) : UNITS,
      grant: () => undefined,
    };
    if (this.#queue.length === 0) {
      const granted = this.#take(waiter);
      if (granted) return { devices: Promise.resolve(granted), withdraw: () => false };
    }
    const devices = new Promise<string[] | null>((resolve) => {
      waiter.grant = resolve;
    });
    this.#queue.push(waiter);
    return {
      devices,
      withdraw: () => {
        const index = this.#queue.indexOf(waiter);
        if (index < 0) return false;
        this.#queue.splice(index, 1);
        waiter.grant(null);
        this.#serve();
        return true;
      },
    };
  }

  /**
   * Gives devices back and serves the queue in order: `amount` is what was requested
   * (default: one whole GPU per device).
   */
  release(devices: readonly string[], amount = devices.length): void {
    const units = amount < 1 ? Math.round(amount * UNITS) : UNITS;
    for (const device of devices) {
      const free = this.#free.get(device);
      if (free !== undefined) this.#free.set(device, Math.min(UNITS, free + units));
    }
    this.#serve();
  }

  /** Takes what the waiter wants when it is free now. */
  #take(waiter: Waiter): string[] | undefined {
    if (waiter.whole > 0) {
      const idle = this.devices.filter((device) => this.#free.get(device) === UNITS);
      if (idle.length < waiter.whole) return undefined;
      const taken = idle.slice(0, waiter.whole);
      for (const device of taken) this.#free.set(device, 0);
      return taken;
    }
    let best: string | undefined;
    for (const device of this.devices) {
      const free = this.#free.get(device) ?? 0;
      if (free >= waiter.units && (best === undefined || free > (this.#free.get(best) ?? 0)))
        best = device;
    }
    if (best === undefined) return undefined;
    this.#free.set(best, (this.#free.get(best) ?? 0) - waiter.units);
    return [best];
  }

  #serve(): void {
    while (this.#queue.length > 0) {
      const granted = this.#take(this.#queue[0]!);
      if (!granted) return;
      this.#queue.shift()!.grant(granted);
    }
  }
}

/**
 * The GPUs this process may use: the ids in `CUDA_VISIBLE_DEVICES` when it is set
 * (empty or `-1`: none), else the GPUs `nvidia-smi -L` lists (found on `env.PATH`), else none.
 */
export async function detectGpus(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const visible = env["CUDA_VISIBLE_DEVICES"];
  if (visible !== undefined) {
    const ids = visible
      .split(",")
      .map((id) => id.trim())
      .filter((id) => id !== "");
    return ids.length === 0 || ids[0] === "-1" ? [] : ids;
  }
  const listing = await execa("nvidia-smi", ["-L"], {
    env,
    extendEnv: false,
    reject: false,
    timeout: 15_000,
    stdin: "ignore",
  });
  if (listing.failed) return [];
  const ids: string[] = [];
  for (const line of listing.stdout.split("\n")) {
    const match = /^GPU (\d+):/.exec(line.trim());
    if (match) ids.push(match[1]!);
  }
  return ids;
}
