/**
 * The S3 server the tests run against, as provided by `test-server.setup.ts` (vitest
 * globalSetup), and helpers to open storage on it. Test-only; not built.
 */
import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { S3Storage, type S3StorageOptions } from "./s3-storage.ts";

export interface TestS3Server {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A bucket the tests may write to (created by the setup unless S3_BUCKET named one). */
  bucket: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    /** The server, or null when the S3 tests are skipped (see s3SkipReason). */
    s3: TestS3Server | null;
    s3SkipReason: string;
  }
}

export const server: TestS3Server | null = inject("s3");
export const skipReason: string = inject("s3SkipReason");

/** Options that reach the test server, plus `extra`. */
export function serverOptions(s3: TestS3Server, extra: S3StorageOptions = {}): S3StorageOptions {
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    ...extra,
  };
}

/** A storage under a fresh, unique prefix of the test bucket. */
export function freshStorage(s3: TestS3Server, extra: S3StorageOptions = {}): S3Storage {
  const prefix = `tests/${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`;
  return new S3Storage(`s3://${s3.bucket}/${prefix}`, serverOptions(s3, extra));
}

/** Deletes every key of `storage` (its prefix only) and closes it. */
export async function emptyAndClose(storage: S3Storage): Promise<void> {
  const keys = await storage.list("");
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys.length) await storage.delete(keys[next++]!);
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await storage.close();
}
