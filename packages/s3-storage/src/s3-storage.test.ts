import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { createStorage } from "@tmgg/core";
import { afterEach, describe, expect, it } from "vitest";
import { S3Storage, createS3Storage, resolveS3Settings } from "./s3-storage.ts";
import { emptyAndClose, freshStorage, server, serverOptions, skipReason } from "./test-server.ts";

describe("resolveS3Settings", () => {
  it("defaults to AWS in us-east-1 with virtual-hosted addressing and 5 attempts", () => {
    expect(resolveS3Settings("s3://my-bucket", {}, {})).toEqual({
      bucket: "my-bucket",
      prefix: "",
      endpoint: undefined,
      region: "us-east-1",
      forcePathStyle: false,
      maxAttempts: 5,
      concurrency: 50,
      credentialsFrom: "environment",
    });
  });

  it("takes the endpoint and region from the standard AWS variables and then uses path-style addressing", () => {
    const env = {
      AWS_ENDPOINT_URL: "http://generic:1",
      AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9000",
      AWS_DEFAULT_REGION: "eu-west-1",
    };
    expect(resolveS3Settings("s3://b/sweeps/", {}, env)).toMatchObject({
      bucket: "b",
      prefix: "sweeps",
      endpoint: "http://127.0.0.1:9000",
      region: "eu-west-1",
      forcePathStyle: true,
    });
    expect(resolveS3Settings("s3://b", {}, { AWS_ENDPOINT_URL: "http://generic:1" }).endpoint).toBe(
      "http://generic:1",
    );
    expect(
      resolveS3Settings("s3://b", {}, { AWS_REGION: "auto", AWS_DEFAULT_REGION: "eu-west-1" })
        .region,
    ).toBe("auto");
  });

  it("prefers options over the environment, path style included", () => {
    const env = { AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9000", AWS_REGION: "eu-west-1" };
    const options = {
      endpoint: "https://acct.r2.cloudflarestorage.com",
      region: "auto",
      forcePathStyle: false,
      maxAttempts: 2,
      concurrency: 8,
      credentials: { accessKeyId: "id", secretAccessKey: "secret" },
    };
    expect(resolveS3Settings("s3://b/a/b", options, env)).toEqual({
      bucket: "b",
      prefix: "a/b",
      endpoint: "https://acct.r2.cloudflarestorage.com",
      region: "auto",
      forcePathStyle: false,
      maxAttempts: 2,
      concurrency: 8,
      credentialsFrom: "options",
    });
  });

  it("rejects malformed URIs and options, naming them", () => {
    expect(() => resolveS3Settings("s3:/b", {}, {})).toThrow(
      /\[s3-storage\] invalid storage URI "s3:\/b"/,
    );
    expect(() => resolveS3Settings("s3://", {}, {})).toThrow(/invalid storage URI/);
    expect(() => resolveS3Settings("s3://b/a/../c", {}, {})).toThrow(/invalid prefix "a\/..\/c"/);
    expect(() => resolveS3Settings("s3://b", { maxAttempts: 0 }, {})).toThrow(
      /maxAttempts must be a positive integer/,
    );
    expect(() => resolveS3Settings("s3://b", { endpoint: "127.0.0.1:9000" }, {})).toThrow(
      /invalid endpoint/,
    );
    expect(() =>
      resolveS3Settings("s3://b", { credentials: { accessKeyId: "id", secretAccessKey: "" } }, {}),
    ).toThrow(/credentials needs both/);
  });

  it("names its storage by the normalized URI", async () => {
    const storage = await createS3Storage("s3://b/sweeps/run-1/", { region: "us-east-1" });
    expect(storage.uri).toBe("s3://b/sweeps/run-1");
    await storage.close();
    await expect(createS3Storage("http://b")).rejects.toThrow(/invalid storage URI/);
  });
});

/** `503`: Service Unavailable; `slowdown`: 503 SlowDown (throttling); `reset`: the connection dropped. */
type Step = "503" | "slowdown" | "reset" | "forward";

/** An HTTP proxy on 127.0.0.1 that answers as `plan` says, request by request, then forwards. */
async function startProxy(
  target: string,
  plan: Step[],
): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const upstream = new URL(target);
  const requests: string[] = [];
  const proxy: Server = createServer((req: IncomingMessage, res) => {
    const step = plan[requests.length] ?? "forward";
    requests.push(`${req.method} ${req.url} ${step}`);
    if (step === "reset") {
      req.socket.destroy();
      return;
    }
    if (step === "503" || step === "slowdown") {
      const code = step === "503" ? "ServiceUnavailable" : "SlowDown";
      req.resume();
      req.on("end", () => {
        res.writeHead(503, { "content-type": "application/xml" });
        res.end(
          `<?xml version="1.0"?><Error><Code>${code}</Code><Message>Try again.</Message></Error>`,
        );
      });
      return;
    }
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        proxy.closeAllConnections();
        proxy.close(() => resolve());
      }),
  };
}

describe.skipIf(server === null)(
  server ? `S3Storage on ${server.endpoint}` : `S3Storage: SKIPPED: ${skipReason}`,
  () => {
    const s3 = server!;
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    function fresh(extra: Parameters<typeof freshStorage>[1] = {}): S3Storage {
      const storage = freshStorage(s3, extra);
      cleanups.push(() => emptyAndClose(storage));
      return storage;
    }

    async function proxy(plan: Step[]): Promise<Awaited<ReturnType<typeof startProxy>>> {
      const started = await startProxy(s3.endpoint, plan);
      cleanups.push(() => started.close());
      return started;
    }

    it("keeps storages under different prefixes of one bucket apart", async () => {
      const a = fresh();
      const b = fresh();
      await a.put("runs/x.json", "a");
      await b.put("runs/x.json", "b");
      expect(await a.list("")).toEqual(["runs/x.json"]);
      expect(Buffer.from((await b.get("runs/x.json"))!).toString()).toBe("b");
      await a.delete("runs/x.json");
      expect(await b.list("runs/")).toEqual(["runs/x.json"]);
    });

    it("reports a wrong secret key once, naming the bucket, the key and what to check", async () => {
      const counting = await proxy([]);
      const storage = new S3Storage(
        `s3://${s3.bucket}/wrong-secret`,
        serverOptions(s3, {
          endpoint: counting.url,
          credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: "wrong" },
        }),
      );
      cleanups.push(() => storage.close());
      const error = await storage.put("runs/a.json", "{}").catch((e: unknown) => e as Error);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toMatch(
        new RegExp(
          `^\\[s3-storage\\] access denied writing ${storage.uri}/runs/a\\.json: the secret key does not match the access key id \\(SignatureDoesNotMatch\\); check the credentials option`,
        ),
      );
      expect(counting.requests).toHaveLength(1);
    });

    it("reports an unknown access key from the environment, pointing at AWS_ACCESS_KEY_ID", async () => {
      const saved = {
        id: process.env["AWS_ACCESS_KEY_ID"],
        secret: process.env["AWS_SECRET_ACCESS_KEY"],
      };
      process.env["AWS_ACCESS_KEY_ID"] = "nobody";
      process.env["AWS_SECRET_ACCESS_KEY"] = "nothing";
      try {
        const storage = new S3Storage(`s3://${s3.bucket}/env-keys`, {
          endpoint: s3.endpoint,
          region: s3.region,
        });
        cleanups.push(() => storage.close());
        await expect(storage.get("runs/a.json")).rejects.toThrow(
          new RegExp(
            `access denied reading s3://${s3.bucket}/env-keys/runs/a\\.json: .*\\(InvalidAccessKeyId\\); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY`,
          ),
        );
      } finally {
        for (const [name, value] of [
          ["AWS_ACCESS_KEY_ID", saved.id],
          ["AWS_SECRET_ACCESS_KEY", saved.secret],
        ] as const) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
      }
    });

    it("reports a missing bucket on every operation instead of reading it as missing keys", async () => {
      const bucket = `tmgg-missing-${randomBytes(4).toString("hex")}`;
      const storage = new S3Storage(`s3://${bucket}/p`, serverOptions(s3));
      cleanups.push(() => storage.close());
      const missing = new RegExp(
        `^\\[s3-storage\\] bucket "${bucket}" does not exist at ${s3.endpoint} \\(\\w+ s3://${bucket}/p/`,
      );
      await expect(storage.put("k.json", "{}")).rejects.toThrow(missing);
      await expect(storage.putIfAbsent("k.json", "{}")).rejects.toThrow(missing);
      await expect(storage.get("k.json")).rejects.toThrow(missing);
      await expect(storage.list("runs/")).rejects.toThrow(missing);
      await expect(storage.delete("k.json")).rejects.toThrow(missing);
    });

    it("retries 503 answers (throttling included) and a dropped connection, then succeeds", async () => {
      const flaky = await proxy(["slowdown", "reset", "forward", "503", "forward"]);
      const storage = fresh({ endpoint: flaky.url });
      await storage.put("runs/a.json", '{"ok": true}');
      expect(Buffer.from((await storage.get("runs/a.json"))!).toString()).toBe('{"ok": true}');
      expect(flaky.requests.map((r) => r.split(" ")[0] + " " + r.split(" ")[2])).toEqual([
        "PUT slowdown",
        "PUT reset",
        "PUT forward",
        "GET 503",
        "GET forward",
      ]);
    });

    it("gives up after maxAttempts answers of 503, saying how many attempts it made", async () => {
      const down = await proxy(["503", "503", "503", "503", "503"]);
      const storage = fresh({ endpoint: down.url, maxAttempts: 3 });
      await expect(storage.put("runs/a.json", "{}")).rejects.toThrow(
        /^\[s3-storage\] writing s3:\/\/.*\/runs\/a\.json failed after 3 attempts: http:\/\/127\.0\.0\.1:\d+ answered HTTP 503 \(ServiceUnavailable/,
      );
      expect(down.requests).toHaveLength(3);
    });

    it("says it cannot reach the endpoint when nothing listens there", async () => {
      const gone = await startProxy(s3.endpoint, []);
      await gone.close();
      const storage = new S3Storage(
        `s3://${s3.bucket}/unreachable`,
        serverOptions(s3, { endpoint: gone.url, maxAttempts: 2 }),
      );
      cleanups.push(() => storage.close());
      await expect(storage.list("runs/")).rejects.toThrow(
        new RegExp(
          `^\\[s3-storage\\] cannot reach ${gone.url} \\(ECONNREFUSED\\) listing .* after 2 attempts: check AWS_ENDPOINT_URL_S3`,
        ),
      );
    });

    it("streams a file larger than one part as a multipart upload", async () => {
      const storage = fresh();
      const dir = await mkdtemp(path.join(tmpdir(), "tmgg-s3-upload-"));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const file = path.join(dir, "model.ckpt");
      const chunks = Array.from({ length: 17 }, () => randomBytes(1024 * 1024));
      await pipeline(chunks, createWriteStream(file));
      await storage.uploadFile("artifacts/model.ckpt", file);
      const head = await storage.client.send(
        new HeadObjectCommand({
          Bucket: s3.bucket,
          Key: `${storage.settings.prefix}/artifacts/model.ckpt`,
        }),
      );
      expect(head.ContentLength).toBe(17 * 1024 * 1024);
      expect(head.ETag).toMatch(/-3"?$/); // three parts: 8 + 8 + 1 MiB
    });

    it("opens through core's createStorage for s3:// URIs", async () => {
      const uri = `s3://${s3.bucket}/via-core-${randomBytes(4).toString("hex")}`;
      const storage = await createStorage(uri, { ...serverOptions(s3) });
      cleanups.push(async () => {
        for (const key of await storage.list("")) await storage.delete(key);
        await storage.close?.();
      });
      expect(storage.constructor.name).toBe("S3Storage");
      expect(storage.uri).toBe(uri);
      expect(await storage.putIfAbsent("claim.json", "1")).toBe(true);
      expect(await storage.putIfAbsent("claim.json", "2")).toBe(false);
    });
  },
);
