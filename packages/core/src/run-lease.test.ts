import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CloudStorage } from "./cloud-storage.ts";
import { LocalStorage } from "./local-storage.ts";
import { RunLeases } from "./run-lease.ts";
import { fromDisk, runLeaseSchema } from "./schemas.ts";

const MODULE = fileURLToPath(new URL("./index.ts", import.meta.url));
const RUN = "gnn_sbm_lr=0.01_seed=1-3fa9c2d1e0";

let dir: string;
let storage: LocalStorage;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tmgg-lease-"));
  storage = new LocalStorage(path.join(dir, "results"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Leases whose clock is `offsetMs` away from now. */
function leasesOf(owner: string, options: { leaseSeconds?: number; offsetMs?: number } = {}) {
  return new RunLeases(storage, "s", {
    owner,
    leaseSeconds: options.leaseSeconds ?? 60,
    now: () => Date.now() + (options.offsetMs ?? 0),
  });
}

/** A lease of a dead owner: claimed two minutes ago with a one-minute lease. */
async function expiredLease(): Promise<void> {
  const dead = leasesOf("dead-sweep", { offsetMs: -120_000 });
  const claim = await dead.claim(RUN);
  expect(claim.isClaimed).toBe(true);
}

async function readLease(key: string) {
  const data = await storage.get(key);
  return fromDisk(runLeaseSchema, JSON.parse(Buffer.from(data!).toString("utf8")));
}

describe("RunLeases", () => {
  it("claims a free run and refuses it to another owner while the lease is live", async () => {
    const first = await leasesOf("a").claim(RUN);
    expect(first.isClaimed).toBe(true);
    const second = await leasesOf("b").claim(RUN);
    expect(second).toMatchObject({ isClaimed: false, holder: { owner: "a", generation: 1 } });
    expect(await storage.list("stages/s/leases/")).toEqual([
      `stages/s/leases/${RUN}.00000001.json`,
    ]);
  });

  it("keeps the leases of runs whose ids start alike apart, all in one folder", async () => {
    const runs = ["abc", "abc.00000001", "abc.1", "abc-1"];
    const claims = await Promise.all(runs.map((run) => leasesOf("a").claim(run)));
    expect(claims.map((claim) => claim.isClaimed)).toEqual([true, true, true, true]);
    expect(await storage.list("stages/s/leases/")).toEqual(
      runs.map((run) => `stages/s/leases/${run}.00000001.json`).sort(),
    );
    const other = await Promise.all(runs.map((run) => leasesOf("b").claim(run)));
    expect(other.map((claim) => claim.isClaimed)).toEqual([false, false, false, false]);
    for (const claim of claims) if (claim.isClaimed) await claim.lease.release();
    expect(await storage.list("stages/s/")).toEqual([]);
    expect((await leasesOf("b").claim("abc.1")).isClaimed).toBe(true);
  });

  it("takes an expired lease over by writing the next generation beside it", async () => {
    await expiredLease();
    const claim = await leasesOf("b").claim(RUN);
    expect(claim.isClaimed).toBe(true);
    if (!claim.isClaimed) return;
    expect(claim.lease.record).toMatchObject({ owner: "b", generation: 2, runId: RUN });
    // the expired lease was not deleted before the new one was written
    expect(await storage.list(`stages/s/leases/${RUN}.`)).toEqual([
      `stages/s/leases/${RUN}.00000001.json`,
      `stages/s/leases/${RUN}.00000002.json`,
    ]);
    await claim.lease.release();
    expect(await storage.list("stages/s/leases/")).toEqual([]);
  });

  it("lets exactly one of 8 concurrent claimers take an expired lease, round after round", async () => {
    for (let round = 0; round < 10; round++) {
      await expiredLease();
      const claimers = Array.from({ length: 8 }, (_, i) => leasesOf(`claimer-${i}`));
      const claims = await Promise.all(claimers.map((leases) => leases.claim(RUN)));
      const winners = claims.flatMap((claim, i) => (claim.isClaimed ? [i] : []));
      expect(winners, `round ${round}`).toHaveLength(1);
      for (const claim of claims) {
        if (!claim.isClaimed) expect(claim.holder?.owner).toBe(`claimer-${winners[0]}`);
      }
      for (const claim of claims) if (claim.isClaimed) await claim.lease.release();
      await rm(path.join(dir, "results"), { recursive: true, force: true });
    }
  });

  it("lets exactly one of 8 claimer processes take an expired lease", async () => {
    await expiredLease();
    const code = `
      import { pathToFileURL } from "node:url";
      const { LocalStorage, RunLeases } = await import(pathToFileURL(process.argv[1]).href);
      const [root, owner, runId] = process.argv.slice(2);
      const leases = new RunLeases(new LocalStorage(root), "s", { owner, leaseSeconds: 60 });
      await new Promise((resolve) => process.stdin.once("data", resolve));
      process.stdin.pause();
      const claim = await leases.claim(runId);
      process.stdout.write(JSON.stringify({ owner, isClaimed: claim.isClaimed }));
    `;
    const children = Array.from({ length: 8 }, (_, i) => {
      const child = spawn(
        process.execPath,
        ["--input-type=module", "-e", code, MODULE, path.join(dir, "results"), `proc-${i}`, RUN],
        { stdio: ["pipe", "pipe", "pipe"] },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const output = new Promise<{ owner: string; isClaimed: boolean }>((resolve, reject) => {
        child.on("close", (exitCode) =>
          exitCode === 0
            ? resolve(JSON.parse(stdout) as { owner: string; isClaimed: boolean })
            : reject(new Error(`claimer exited ${exitCode}: ${stderr}`)),
        );
      });
      return { child, output };
    });
    // Let every child load the module, then start them together.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const { child } of children) child.stdin.end("go\n");
    const outcomes = await Promise.all(children.map((c) => c.output));
    const winners = outcomes.filter((o) => o.isClaimed).map((o) => o.owner);
    expect(winners).toHaveLength(1);
    const holder = await leasesOf("observer").holder(RUN);
    expect(holder?.owner).toBe(winners[0]);
  }, 30_000);

  it("steps back when another claimer holds a live lease it did not see (a reused generation)", async () => {
    // Sweep a holds generation 3; claimer b lists once from a stale view with no leases.
    const a = leasesOf("a");
    await storage.put(
      a.key(RUN, 3),
      JSON.stringify({
        run_id: RUN,
        owner: "a",
        generation: 3,
        acquired_at: new Date().toISOString(),
        expires_at: new Date(Date.now() + 60_000).toISOString(),
      }),
    );
    let isStale = true;
    const staleOnce: CloudStorage = {
      uri: storage.uri,
      put: (key, data) => storage.put(key, data),
      putIfAbsent: (key, data) => storage.putIfAbsent(key, data),
      get: (key) => storage.get(key),
      delete: (key) => storage.delete(key),
      uploadFile: (key, file) => storage.uploadFile(key, file),
      list: async (prefix) => {
        if (isStale) {
          isStale = false;
          return [];
        }
        return storage.list(prefix);
      },
    };
    const claim = await new RunLeases(staleOnce, "s", { owner: "b" }).claim(RUN);
    expect(claim).toMatchObject({ isClaimed: false, holder: { owner: "a", generation: 3 } });
    // b wrote generation 1, saw a's lease, and deleted its own
    expect(await storage.list(`stages/s/leases/${RUN}.`)).toEqual([a.key(RUN, 3)]);
  });

  it("renews a lease with a later expiry and tells its owner when another took it over", async () => {
    const clock = { offsetMs: 0 };
    const mine = new RunLeases(storage, "s", {
      owner: "a",
      leaseSeconds: 60,
      now: () => Date.now() + clock.offsetMs,
    });
    const claim = await mine.claim(RUN);
    if (!claim.isClaimed) throw new Error("expected the claim");
    const before = Date.parse(claim.lease.record.expiresAt);
    clock.offsetMs = 30_000;
    expect(await claim.lease.renew()).toBeUndefined();
    expect(Date.parse((await readLease(claim.lease.key)).expiresAt)).toBeGreaterThanOrEqual(
      before + 30_000,
    );
    // b's clock is past a's expiry: b takes over; a hears of it on its next renewal
    const other = await leasesOf("b", { offsetMs: 200_000 }).claim(RUN);
    expect(other.isClaimed).toBe(true);
    clock.offsetMs = 200_000;
    expect((await claim.lease.renew())?.owner).toBe("b");
  });

  it("keeps a lease alive every third of its length until released", async () => {
    const leases = leasesOf("a", { leaseSeconds: 1 });
    const claim = await leases.claim(RUN);
    if (!claim.isClaimed) throw new Error("expected the claim");
    const problems: string[] = [];
    claim.lease.keepAlive((message) => problems.push(message));
    await new Promise((resolve) => setTimeout(resolve, 1600));
    // without renewals it would have expired 0.6 s ago
    expect(await leasesOf("b").claim(RUN)).toMatchObject({
      isClaimed: false,
      holder: { owner: "a" },
    });
    await claim.lease.release();
    expect(problems).toEqual([]);
    expect(await storage.list("stages/s/leases/")).toEqual([]);
    expect((await leasesOf("b").claim(RUN)).isClaimed).toBe(true);
  });

  it("rejects a lease shorter than a second and run ids that cannot be keys", () => {
    expect(() => new RunLeases(storage, "s", { leaseSeconds: 0.5 })).toThrow(
      /\[coordinator\] leaseSeconds must be a number of seconds >= 1, got 0.5/,
    );
    expect(() => new RunLeases(storage, "a/b")).toThrow(/invalid stage name/);
    expect(() => leasesOf("a").prefix("../x")).toThrow(/invalid run id/);
  });
});
