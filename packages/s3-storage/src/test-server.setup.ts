/**
 * vitest globalSetup: provides an S3 server to the tests.
 * - S3_ENDPOINT / S3_ACCESS_KEY / S3_SECRET_KEY (and optionally S3_BUCKET, S3_REGION) set:
 *   uses that server (a MinIO service container in GitHub CI, for instance);
 * - else starts a throwaway Ceph radosgw with scripts/ceph-start.sh in a temp folder on a
 *   free port, and stops it afterwards;
 * - radosgw not installed: fails under CI, otherwise skips the S3 suites, saying why.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, rmSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";
import type { TestProject } from "vitest/node";
import type { TestS3Server } from "./test-server.ts";

const run = promisify(execFile);
const SCRIPTS = fileURLToPath(new URL("../../../scripts/", import.meta.url));
const INSTALL =
  "apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common curl";

function onPath(program: string): boolean {
  for (const dir of (process.env["PATH"] ?? "").split(path.delimiter)) {
    try {
      accessSync(path.join(dir, program), constants.X_OK);
      return true;
    } catch {
      // not in this folder
    }
  }
  return false;
}

function isCi(): boolean {
  const ci = process.env["CI"];
  return ci !== undefined && ci !== "" && ci !== "false" && ci !== "0";
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}

function client(s3: TestS3Server): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}

async function createBucket(s3: TestS3Server): Promise<void> {
  const c = client(s3);
  try {
    await c.send(new CreateBucketCommand({ Bucket: s3.bucket }));
  } finally {
    c.destroy();
  }
}

async function deleteBucket(s3: TestS3Server): Promise<void> {
  const c = client(s3);
  try {
    let token: string | undefined;
    do {
      const page = await c.send(
        new ListObjectsV2Command({
          Bucket: s3.bucket,
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
      await Promise.all(
        (page.Contents ?? []).map((o) =>
          c.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: o.Key })),
        ),
      );
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    await c.send(new DeleteBucketCommand({ Bucket: s3.bucket }));
  } finally {
    c.destroy();
  }
}

export default async function setup(
  project: TestProject,
): Promise<(() => Promise<void>) | undefined> {
  // The tests pass credentials explicitly; never let the SDK probe a cloud metadata address.
  process.env["AWS_EC2_METADATA_DISABLED"] = "true";
  const bucket = process.env["S3_BUCKET"] ?? `tmgg-test-${randomBytes(4).toString("hex")}`;

  const endpoint = process.env["S3_ENDPOINT"];
  if (endpoint) {
    const s3: TestS3Server = {
      endpoint,
      region: process.env["S3_REGION"] ?? "us-east-1",
      accessKeyId: process.env["S3_ACCESS_KEY"] ?? "",
      secretAccessKey: process.env["S3_SECRET_KEY"] ?? "",
      bucket,
    };
    if (!s3.accessKeyId || !s3.secretAccessKey) {
      throw new Error(
        "[s3-storage tests] S3_ENDPOINT is set but S3_ACCESS_KEY or S3_SECRET_KEY is not: set all three",
      );
    }
    const ownsBucket = process.env["S3_BUCKET"] === undefined;
    if (ownsBucket) await createBucket(s3);
    project.provide("s3", s3);
    project.provide("s3SkipReason", "");
    return ownsBucket ? () => deleteBucket(s3) : undefined;
  }

  if (!onPath("radosgw")) {
    const reason = `radosgw is not installed, so there is no S3 server to test against: ${INSTALL} (or set S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY)`;
    if (isCi()) throw new Error(`[s3-storage tests] ${reason}`);
    process.stderr.write(
      `\n${"!".repeat(100)}\n!! [s3-storage tests] SKIPPING every S3 suite: ${reason}\n${"!".repeat(100)}\n\n`,
    );
    project.provide("s3", null);
    project.provide("s3SkipReason", reason);
    return undefined;
  }

  const dir = await mkdtemp(path.join(tmpdir(), "tmgg-ceph-"));
  const clusterDir = path.join(dir, "cluster");
  // If vitest exits without running the teardown (killed, crashed), stop the daemons anyway.
  const stopOnExit = (): void => {
    try {
      execFileSync(path.join(SCRIPTS, "ceph-stop.sh"), [clusterDir], {
        stdio: "ignore",
        timeout: 30_000,
      });
    } catch {
      // best effort while exiting
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", stopOnExit);
  const stop = async (): Promise<void> => {
    process.removeListener("exit", stopOnExit);
    await run(path.join(SCRIPTS, "ceph-stop.sh"), [clusterDir], { timeout: 60_000 }).catch(
      () => undefined,
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    await run(path.join(SCRIPTS, "ceph-start.sh"), [clusterDir, String(port)], {
      timeout: 180_000,
    });
    const env = Object.fromEntries(
      (await readFile(path.join(clusterDir, "env"), "utf8"))
        .split("\n")
        .filter((line) => line.includes("="))
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    ) as Record<string, string | undefined>;
    const s3: TestS3Server = {
      endpoint: env["S3_ENDPOINT"] ?? `http://127.0.0.1:${port}`,
      region: env["S3_REGION"] ?? "us-east-1",
      accessKeyId: env["S3_ACCESS_KEY"] ?? "",
      secretAccessKey: env["S3_SECRET_KEY"] ?? "",
      bucket,
    };
    await createBucket(s3);
    project.provide("s3", s3);
    project.provide("s3SkipReason", "");
  } catch (error) {
    await stop();
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    throw new Error(
      `[s3-storage tests] could not start Ceph with scripts/ceph-start.sh: ${String(error)}\n${stdout}\n${stderr}`,
      {
        cause: error,
      },
    );
  }
  return stop;
}
