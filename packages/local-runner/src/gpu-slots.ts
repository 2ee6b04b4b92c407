import { execa } from "execa";

/** A place in the queue for GPUs: `devices` resolves with the granted ids, or null once withdrawn. */
export interface GpuRequest {
  devices: Promise<string[] | null>;
  /** Leaves the queue; false when the devices were already granted. */
  withdraw(): boolean;
}

interface Waiter {
  count: number;
  grant: (devices: string[] | null) => void;
}

/**
 * A pool of GPU device ids handed out first come, first served: a run waits until enough
 * devices are free, and never two runs share one.
 */
export class GpuSlots {
  readonly devices: readonly string[];
  readonly #free: string[];
  readonly #queue: Waiter[] = [];

  constructor(devices: readonly string[]) {
    this.devices = devices;
    this.#free = [...devices];
  }

  /** Devices not held by a run. */
  get freeCount(): number {
    return this.#free.length;
  }

  /** Asks for `count` devices (1 ≤ count ≤ devices.length). */
  request(count: number): GpuRequest {
    if (this.#queue.length === 0 && this.#free.length >= count) {
      return { devices: Promise.resolve(this.#free.splice(0, count)), withdraw: () => false };
    }
    let waiter!: Waiter;
    const devices = new Promise<string[] | null>((resolve) => {
      waiter = { count, grant: resolve };
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

  /** Gives devices back and serves the queue in order. */
  release(devices: readonly string[]): void {
    this.#free.push(...devices);
    this.#free.sort((a, b) => this.devices.indexOf(a) - this.devices.indexOf(b));
    this.#serve();
  }

  #serve(): void {
    while (this.#queue.length > 0 && this.#free.length >= this.#queue[0]!.count) {
      const waiter = this.#queue.shift()!;
      waiter.grant(this.#free.splice(0, waiter.count));
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
