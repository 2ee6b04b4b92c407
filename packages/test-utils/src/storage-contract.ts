import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { CloudStorage } from "@tmgg/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

export interface StorageContractOptions {
  /**
   * Runs the slow cases: listing more than 1,000 keys (one S3 page) and a 20 MiB upload.
   * Default true; every implementation runs them in CI.
   */
  large?: boolean;
}

export interface StorageUnderTest {
  storage: CloudStorage;
  /** Removes what the test stored and releases the storage. */
  cleanup(): Promise<void>;
}

const text = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : Buffer.from(bytes).toString("utf8");

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** Runs `task` over `items` with at most `limit` in flight. */
async function inBatches<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await task(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * The behaviour every CloudStorage must show, as one vitest suite. `make` returns a
 * fresh, empty storage for each test.
 *
 * @example
 * storageContract("LocalStorage", async () => {
 *   const dir = await mkdtemp(path.join(tmpdir(), "storage-"));
 *   return { storage: new LocalStorage(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
 * });
 */
export function storageContract(
  name: string,
  make: () => Promise<StorageUnderTest>,
  options: StorageContractOptions = {},
): void {
  const large = options.large ?? true;

  describe(`${name} (storage contract)`, () => {
    let storage: CloudStorage;
    let cleanup: (() => Promise<void>) | undefined;

    beforeEach(async () => {
      const made = await make();
      storage = made.storage;
      cleanup = () => made.cleanup();
    });

    afterEach(async () => {
      await cleanup?.();
      cleanup = undefined;
    });

    it("names where it stores as a uri", () => {
      expect(typeof storage.uri).toBe("string");
      expect(storage.uri.length).toBeGreaterThan(0);
    });

    it("reads back a string it stored, as UTF-8 bytes", async () => {
      await storage.put("stages/s1/runs/a.json", '{"val_loss": 0.5, "note": "héllo ✓"}');
      expect(text(await storage.get("stages/s1/runs/a.json"))).toBe(
        '{"val_loss": 0.5, "note": "héllo ✓"}',
      );
    });

    it("reads back binary data byte for byte", async () => {
      const bytes = new Uint8Array(512).map((_, i) => i % 256);
      await storage.put("bin/all-bytes", bytes);
      const back = await storage.get("bin/all-bytes");
      expect(back).toBeInstanceOf(Uint8Array);
      expect(Buffer.from(back!).equals(Buffer.from(bytes))).toBe(true);
    });

    it("stores an empty value as an existing, empty key", async () => {
      await storage.put("empty", "");
      expect((await storage.get("empty"))?.byteLength).toBe(0);
      expect(await storage.list("")).toEqual(["empty"]);
    });

    it("replaces a value on put", async () => {
      await storage.put("k.json", "first");
      await storage.put("k.json", "second, longer than the first");
      await storage.put("k.json", "third");
      expect(text(await storage.get("k.json"))).toBe("third");
    });

    it("writes a value given in pieces, in order, and replaces the old one whole", async () => {
      await storage.put("pieces.json", "old value");
      function* pieces(): Generator<string> {
        for (let i = 0; i < 300; i++) yield `${"é".repeat(i % 7)}piece ${i}\n`;
      }
      await storage.put("pieces.json", pieces());
      expect(text(await storage.get("pieces.json"))).toBe([...pieces()].join(""));
      await storage.put("pieces.json", []);
      expect((await storage.get("pieces.json"))?.byteLength).toBe(0);
    });

    it("writes values that need not survive a crash the same way (durable: false)", async () => {
      expect(await storage.putIfAbsent("lease.json", "a", { durable: false })).toBe(true);
      expect(await storage.putIfAbsent("lease.json", "b", { durable: false })).toBe(false);
      await storage.put("lease.json", "renewed", { durable: false });
      expect(text(await storage.get("lease.json"))).toBe("renewed");
      expect(await storage.list("")).toEqual(["lease.json"]);
    });

    it("returns undefined for a key that does not exist", async () => {
      expect(await storage.get("missing.json")).toBeUndefined();
      expect(await storage.get("missing/deeper/key.json")).toBeUndefined();
    });

    it("returns undefined for a prefix of stored keys, which is not a key itself", async () => {
      await storage.put("dir/inner.json", "x");
      expect(await storage.get("dir")).toBeUndefined();
    });

    it("writes with putIfAbsent only when the key does not exist", async () => {
      expect(await storage.putIfAbsent("claim.json", "first")).toBe(true);
      expect(await storage.putIfAbsent("claim.json", "second")).toBe(false);
      expect(text(await storage.get("claim.json"))).toBe("first");
      await storage.put("claim.json", "replaced");
      expect(await storage.putIfAbsent("claim.json", "third")).toBe(false);
      expect(text(await storage.get("claim.json"))).toBe("replaced");
    });

    it("lets exactly one of 8 concurrent putIfAbsent writers win, and keeps the winner's value", async () => {
      for (let round = 0; round < 5; round++) {
        const key = `race/${round}.json`;
        const wins = await Promise.all(
          Array.from({ length: 8 }, (_, writer) => storage.putIfAbsent(key, `writer-${writer}`)),
        );
        expect(wins.filter(Boolean), `round ${round}`).toHaveLength(1);
        expect(text(await storage.get(key))).toBe(`writer-${wins.indexOf(true)}`);
      }
    });

    it("lists exactly the keys under a prefix, nested ones included, sorted", async () => {
      const keys = [
        "b/z.json",
        "a/2/deep/x.json",
        "a/1.json",
        "ab/3.json",
        "a/10.json",
        "b.json",
        "a/2/y.json",
      ];
      for (const key of keys) await storage.put(key, key);
      expect(await storage.list("a/")).toEqual([
        "a/1.json",
        "a/10.json",
        "a/2/deep/x.json",
        "a/2/y.json",
      ]);
      expect(await storage.list("a/2/")).toEqual(["a/2/deep/x.json", "a/2/y.json"]);
      expect(await storage.list("a")).toEqual([
        "a/1.json",
        "a/10.json",
        "a/2/deep/x.json",
        "a/2/y.json",
        "ab/3.json",
      ]);
      expect(await storage.list("a/1")).toEqual(["a/1.json", "a/10.json"]);
      expect(await storage.list("")).toEqual([...keys].sort());
      expect(await storage.list("c/")).toEqual([]);
      expect(await storage.list("a/1.json/")).toEqual([]);
    });

    it.skipIf(!large)(
      "lists more than 1,000 keys under a prefix, across pages",
      async () => {
        const keys = Array.from(
          { length: 1_050 },
          (_, i) => `stages/big/runs/run-${String(i).padStart(5, "0")}.json`,
        );
        await inBatches(keys, 32, (key) => storage.put(key, "{}"));
        await storage.put("stages/big/stage_result.json", "{}");
        await storage.put("stages/bigger/runs/other.json", "{}");
        expect(await storage.list("stages/big/runs/")).toEqual(keys);
        expect(await storage.list("stages/big/")).toHaveLength(1_051);
      },
      120_000,
    );

    it("deletes a key, and deleting a missing key is not an error", async () => {
      await storage.put("d/one.json", "1");
      await storage.put("d/two.json", "2");
      await storage.delete("d/one.json");
      expect(await storage.get("d/one.json")).toBeUndefined();
      expect(await storage.list("d/")).toEqual(["d/two.json"]);
      await storage.delete("d/one.json");
      await storage.delete("never/existed.json");
      expect(await storage.putIfAbsent("d/one.json", "again")).toBe(true);
    });

    it("rejects keys that are not relative paths of plain segments", async () => {
      for (const key of [
        "../x",
        "/abs",
        "a//b",
        "",
        "a/./b",
        "a/../b",
        "trailing/",
        "back\\slash",
      ]) {
        await expect(storage.put(key, "x"), `put ${JSON.stringify(key)}`).rejects.toThrow(
          /invalid key/,
        );
        await expect(
          storage.putIfAbsent(key, "x"),
          `putIfAbsent ${JSON.stringify(key)}`,
        ).rejects.toThrow(/invalid key/);
        await expect(storage.get(key), `get ${JSON.stringify(key)}`).rejects.toThrow(/invalid key/);
        await expect(storage.delete(key), `delete ${JSON.stringify(key)}`).rejects.toThrow(
          /invalid key/,
        );
      }
      await expect(storage.list("../")).rejects.toThrow(/invalid prefix/);
      await expect(storage.list("/abs/")).rejects.toThrow(/invalid prefix/);
      expect(await storage.list("")).toEqual([]);
    });

    it.skipIf(!large)(
      "streams a 20 MiB file up with uploadFile and reads it back unchanged",
      async () => {
        const dir = await mkdtemp(path.join(tmpdir(), "tmgg-storage-contract-"));
        try {
          const file = path.join(dir, "checkpoint.bin");
          const chunks: Buffer[] = [];
          for (let i = 0; i < 20; i++) chunks.push(randomBytes(1024 * 1024));
          await pipeline(chunks, createWriteStream(file));
          const expected = sha256(Buffer.concat(chunks));

          await storage.uploadFile("artifacts/run-1/checkpoint.bin", file);
          const back = await storage.get("artifacts/run-1/checkpoint.bin");
          expect(back?.byteLength).toBe(20 * 1024 * 1024);
          expect(sha256(back!)).toBe(expected);
          await expect(storage.uploadFile("../escape.bin", file)).rejects.toThrow(/invalid key/);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
      120_000,
    );

    it("uploads a small file with uploadFile and names the missing file when there is none", async () => {
      const dir = await mkdtemp(path.join(tmpdir(), "tmgg-storage-contract-"));
      try {
        const file = path.join(dir, "metrics.jsonl");
        await pipeline([Buffer.from('{"step": 1}\n')], createWriteStream(file));
        await storage.uploadFile("logs/metrics.jsonl", file);
        expect(text(await storage.get("logs/metrics.jsonl"))).toBe('{"step": 1}\n');
        const missing = path.join(dir, "nope.bin");
        await expect(storage.uploadFile("logs/nope.bin", missing)).rejects.toThrow(missing);
        expect(await storage.list("logs/")).toEqual(["logs/metrics.jsonl"]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
