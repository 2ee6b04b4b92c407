/**
 * Run leases: before a coordinator starts a run it claims it in storage, so sweeps of one
 * stage running at the same time (shards, an overlapping sweep, a resume after a kill)
 * never run it at once, and a sweep that died (SIGKILL) gives its runs back when its
 * leases expire.
 *
 * Layout: `stages/<stage>/leases/<run_id>.<generation>.json`, generation 1, 2, … holding
 * `{run_id, owner, generation, acquired_at, expires_at}`. The protocol needs only the
 * CloudStorage operations, each read-after-write consistent (S3 and LocalStorage are):
 *
 * - claim: list the run's lease keys and read the newest. Live (not expired) and another
 *   owner's → the run is held. Otherwise `putIfAbsent` the next generation: of every
 *   claimer that read the same newest lease exactly one wins, the others read again and
 *   find the winner's live lease. An expired lease is never deleted to be replaced (that
 *   "delete, then putIfAbsent" would let a slow claimer delete the winner's new lease):
 *   takeover writes the next generation beside it.
 * - verify: after winning, list again. Generations can be reused once released keys are
 *   deleted, so two claimers could win different generations; each wrote before it
 *   listed, so of any two, the later writer sees the earlier one's live lease and steps
 *   back (deletes its own). It retries a few times after a random pause, so a tie where
 *   both step back rarely leaves the run unclaimed.
 * - renew: its owner rewrites its own key with a later `expires_at`, every third of the
 *   lease, while the run is in flight; only an owner ever writes its key.
 * - release: after the run's result is saved, delete its own key and the expired ones.
 *   A claimer that wins after that reads the saved result before it runs anything.
 *
 * Leases assume clocks agree to well within the lease (seconds against minutes).
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { CloudStorage } from "./cloud-storage.ts";
import {
  IDENTIFIER_PATTERN,
  RUN_ID_PATTERN,
  fromDisk,
  runLeaseSchema,
  toDiskJson,
  type RunLeaseRecord,
} from "./schemas.ts";

/** Default lease length: a run's claim lapses this long after its owner last renewed it. */
export const DEFAULT_LEASE_SECONDS = 120;
const MAX_CLAIM_ATTEMPTS = 16;
const MAX_STEP_BACKS = 3;
const GENERATION_DIGITS = 8;

/** A lease id for this process: `<host>:<pid>:<random>`. */
export function defaultLeaseOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
}

export type ClaimResult =
  { isClaimed: true; lease: RunLease } | { isClaimed: false; holder: RunLeaseRecord | null };

export interface RunLeasesOptions {
  /** Who claims: recorded in each lease; default {@link defaultLeaseOwner}. */
  owner?: string;
  /** Lease length in seconds; default 120. */
  leaseSeconds?: number;
  /** The clock, in ms since the epoch; default `Date.now`. */
  now?: () => number;
}

/** The generation of a run's lease key: what follows its prefix is `<digits>.json`. */
function generationOf(key: string, prefix: string): number | undefined {
  const match = /^(\d+)\.json$/.exec(key.slice(prefix.length));
  return key.startsWith(prefix) && match ? Number(match[1]) : undefined;
}

/** Claims, renews and releases the leases of one stage's runs. */
export class RunLeases {
  readonly storage: CloudStorage;
  readonly stage: string;
  readonly owner: string;
  readonly leaseSeconds: number;
  readonly #now: () => number;

  constructor(storage: CloudStorage, stage: string, options: RunLeasesOptions = {}) {
    const leaseSeconds = options.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    if (!(typeof leaseSeconds === "number" && Number.isFinite(leaseSeconds) && leaseSeconds >= 1)) {
      throw new RangeError(
        `[coordinator] leaseSeconds must be a number of seconds >= 1, got ${String(leaseSeconds)}`,
      );
    }
    if (!IDENTIFIER_PATTERN.test(stage)) {
      throw new Error(
        `[coordinator] invalid stage name ${JSON.stringify(stage)}: use letters, digits, '_' and '-' only`,
      );
    }
    this.storage = storage;
    this.stage = stage;
    this.owner = options.owner ?? defaultLeaseOwner();
    this.leaseSeconds = leaseSeconds;
    this.#now = options.now ?? Date.now;
  }

  /**
   * What a run's lease keys start with. They lie side by side in one folder (no folder per
   * run, which a local disk would have to create for every run and keep afterwards).
   */
  prefix(runId: string): string {
    if (!RUN_ID_PATTERN.test(runId))
      throw new Error(`[coordinator] invalid run id ${JSON.stringify(runId)} for a lease`);
    return `stages/${this.stage}/leases/${runId}.`;
  }

  key(runId: string, generation: number): string {
    return `${this.prefix(runId)}${String(generation).padStart(GENERATION_DIGITS, "0")}.json`;
  }

  /** True when the lease has not expired by this process's clock. */
  isLive(record: RunLeaseRecord): boolean {
    const expires = Date.parse(record.expiresAt);
    return Number.isFinite(expires) && expires > this.#now();
  }

  async #read(key: string): Promise<RunLeaseRecord | undefined | "unreadable"> {
    const data = await this.storage.get(key);
    if (data === undefined) return undefined;
    try {
      return fromDisk(runLeaseSchema, JSON.parse(Buffer.from(data).toString("utf8")));
    } catch {
      // not written by a coordinator (writes are atomic): it holds nothing
      return "unreadable";
    }
  }

  /** The run's lease keys with their generations, oldest first. */
  async #keys(runId: string): Promise<Array<{ key: string; generation: number }>> {
    const prefix = this.prefix(runId);
    const keys = await this.storage.list(prefix);
    return keys
      .flatMap((key) => {
        // Another run's id may start with this one's and a dot: its keys are not ours.
        const generation = generationOf(key, prefix);
        return generation === undefined ? [] : [{ key, generation }];
      })
      .sort((a, b) => a.generation - b.generation);
  }

  /** Live leases of the run other than `ownKey`. */
  async #othersLive(runId: string, ownKey: string): Promise<RunLeaseRecord[]> {
    const live: RunLeaseRecord[] = [];
    for (const { key } of await this.#keys(runId)) {
      if (key === ownKey) continue;
      const record = await this.#read(key);
      if (record !== undefined && record !== "unreadable" && this.isLive(record)) live.push(record);
    }
    return live;
  }

  #record(runId: string, generation: number, acquiredAt: string): RunLeaseRecord {
    const now = this.#now();
    return {
      runId,
      owner: this.owner,
      generation,
      acquiredAt,
      expiresAt: new Date(now + this.leaseSeconds * 1000).toISOString(),
    };
  }

  /** The newest live lease on the run, if any. */
  async holder(runId: string): Promise<RunLeaseRecord | undefined> {
    const keys = await this.#keys(runId);
    const newest = keys.at(-1);
    if (!newest) return undefined;
    const record = await this.#read(newest.key);
    return record !== undefined && record !== "unreadable" && this.isLive(record)
      ? record
      : undefined;
  }

  /**
   * Claims a run: the lease when this owner won it, else the live lease that holds it
   * (null when claimers kept colliding and none is live now: rare, try again later).
   *
   * @example
   * const claim = await leases.claim(runId);
   * if (claim.isClaimed) { try { await run(); } finally { await claim.lease.release(); } }
   */
  async claim(runId: string): Promise<ClaimResult> {
    let holder: RunLeaseRecord | undefined;
    let stepBacks = 0;
    for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
      const newest = (await this.#keys(runId)).at(-1);
      let next = 1;
      if (newest) {
        const record = await this.#read(newest.key);
        if (record === undefined) continue; // deleted between the list and the read
        if (record !== "unreadable" && this.isLive(record))
          return { isClaimed: false, holder: record };
        next = newest.generation + 1;
      }
      const key = this.key(runId, next);
      const record = this.#record(runId, next, new Date(this.#now()).toISOString());
      // Lost: another claimer won this generation; the next pass reads its lease.
      // A lease is worth nothing after a crash (it expires), so it is not flushed to disk.
      if (!(await this.storage.putIfAbsent(key, toDiskJson(record), { durable: false }))) continue;
      const others = await this.#othersLive(runId, key);
      if (others.length === 0) return { isClaimed: true, lease: new RunLease(this, key, record) };
      // A claimer raced us through a reused generation: step back, pause, look again.
      holder = others.at(-1);
      await this.storage.delete(key);
      if (++stepBacks >= MAX_STEP_BACKS) break;
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 90 * stepBacks));
    }
    return { isClaimed: false, holder: (await this.holder(runId)) ?? holder ?? null };
  }

  /** @internal Used by RunLease. */
  async renewKey(key: string, record: RunLeaseRecord): Promise<RunLeaseRecord> {
    const renewed = this.#record(record.runId, record.generation, record.acquiredAt);
    await this.storage.put(key, toDiskJson(renewed), { durable: false });
    return renewed;
  }

  /** @internal Another owner's live lease on the run, if one took it over. */
  async takenOverBy(record: RunLeaseRecord, key: string): Promise<RunLeaseRecord | undefined> {
    return (await this.#othersLive(record.runId, key)).find(
      (other) => other.generation > record.generation,
    );
  }

  /** @internal Deletes `key` and the run's expired or unreadable lease keys. */
  async releaseKey(runId: string, key: string): Promise<void> {
    await this.storage.delete(key);
    for (const entry of await this.#keys(runId)) {
      if (entry.key === key) continue;
      const record = await this.#read(entry.key);
      if (record === "unreadable" || (record !== undefined && !this.isLive(record)))
        await this.storage.delete(entry.key);
    }
  }
}

/** A lease this owner holds on one run. */
export class RunLease {
  readonly key: string;
  #record: RunLeaseRecord;
  readonly #leases: RunLeases;
  #timer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> = Promise.resolve();
  #isReleased = false;

  constructor(leases: RunLeases, key: string, record: RunLeaseRecord) {
    this.#leases = leases;
    this.key = key;
    this.#record = record;
  }

  get record(): RunLeaseRecord {
    return this.#record;
  }

  /** Rewrites the lease with a later expiry; resolves with the owner that took it over, if one did. */
  async renew(): Promise<RunLeaseRecord | undefined> {
    if (this.#isReleased) return undefined;
    this.#record = await this.#leases.renewKey(this.key, this.#record);
    return this.#leases.takenOverBy(this.#record, this.key);
  }

  /**
   * Renews every third of the lease until released. `onProblem` hears of a failed renewal
   * or of another owner that took the lease over (this process stalled past its lease).
   */
  keepAlive(onProblem: (message: string) => void): void {
    if (this.#timer) return;
    const everyMs = (this.#leases.leaseSeconds * 1000) / 3;
    let hasWarned = false;
    this.#timer = setInterval(() => {
      this.#renewing = this.#renewing.then(async () => {
        try {
          const other = await this.renew();
          if (other && !hasWarned) {
            hasWarned = true;
            onProblem(
              `[coordinator] the lease on run ${this.#record.runId} was taken over by ${other.owner} (this sweep missed renewing it within ${this.#leases.leaseSeconds} s); both sweeps may run it`,
            );
          }
        } catch (error) {
          onProblem(
            `[coordinator] could not renew the lease on run ${this.#record.runId} (${this.key}): ${(error as Error).message}`,
          );
        }
      });
    }, everyMs);
    this.#timer.unref();
  }

  /** Stops renewing and deletes the lease (and the run's expired ones). */
  async release(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#renewing;
    if (this.#isReleased) return;
    this.#isReleased = true;
    await this.#leases.releaseKey(this.#record.runId, this.key);
  }
}
