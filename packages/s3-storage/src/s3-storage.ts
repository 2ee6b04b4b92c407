/**
 * CloudStorage on S3 and S3-compatible stores (AWS, Cloudflare R2, Tigris, MinIO, Ceph).
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { assertValidKey, assertValidPrefix, type CloudStorage, type StorageData } from "@tmgg/core";

const PLUGIN = "s3-storage";
const MIB = 1024 * 1024;
/** Bodies larger than this go up as a multipart upload. */
const MULTIPART_THRESHOLD_BYTES = 64 * MIB;
const MIN_PART_SIZE_BYTES = 8 * MIB;
const MAX_PARTS = 10_000;

export interface S3StorageOptions {
  /** Endpoint URL of an S3-compatible store (`https://<account>.r2.cloudflarestorage.com`). Default: `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`, else AWS. */
  endpoint?: string;
  /** Signing region. Default: `AWS_REGION`, then `AWS_DEFAULT_REGION`, else `us-east-1`. */
  region?: string;
  /** Addresses buckets as `<endpoint>/<bucket>` instead of `<bucket>.<endpoint>`. Default: true when an endpoint is set, else false. */
  forcePathStyle?: boolean;
  /** Keys to sign with. Default: the AWS SDK's chain (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, profiles, SSO, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Tries per request, the first included, for throttling, 5xx and dropped connections. Default 5. */
  maxAttempts?: number;
  /** Connections open at once (the HTTP socket pool); multipart uploads send up to 4 parts at once. Default 50. */
  concurrency?: number;
}

/** The settings an S3Storage runs with, after defaults and environment variables. */
export interface ResolvedS3Settings {
  bucket: string;
  /** The key prefix inside the bucket, without slashes at either end; "" for none. */
  prefix: string;
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
  maxAttempts: number;
  concurrency: number;
  /** Where credentials come from: "options" or "environment" (the SDK's default chain). */
  credentialsFrom: "options" | "environment";
}

type Action = "read" | "write" | "list" | "delete" | "upload";
const ING: Record<Action, string> = {
  read: "reading",
  write: "writing",
  list: "listing",
  delete: "deleting",
  upload: "uploading to",
};
const PERMISSION: Record<Action, string> = {
  read: "s3:GetObject, and s3:ListBucket so that a missing key reads as missing instead of 403",
  write: "s3:PutObject",
  list: "s3:ListBucket",
  delete: "s3:DeleteObject",
  upload: "s3:PutObject",
};

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
]);

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function positiveInt(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new Error(
      `[${PLUGIN}] option ${name} must be a positive integer, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** Splits `s3://bucket/prefix` into its bucket and its prefix (no slashes at the ends). */
export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(uri);
  const bucket = match?.[1] ?? "";
  if (!match || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(bucket)) {
    throw new Error(
      `[${PLUGIN}] invalid storage URI ${JSON.stringify(uri)}: use s3://<bucket>/<optional/prefix>, e.g. s3://my-bucket/sweeps`,
    );
  }
  const prefix = (match[2] ?? "").replace(/^\/+|\/+$/g, "");
  if (prefix !== "") {
    try {
      assertValidKey(prefix, PLUGIN);
    } catch (error) {
      throw new Error(
        `[${PLUGIN}] invalid prefix ${JSON.stringify(prefix)} in storage URI ${uri}: use non-empty segments without '.', '..' or backslashes`,
        { cause: error },
      );
    }
  }
  return { bucket, prefix };
}

/** The settings for `uri` and `options`, filled in from the environment (`env`, default `process.env`). */
export function resolveS3Settings(
  uri: string,
  options: S3StorageOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): ResolvedS3Settings {
  const { bucket, prefix } = parseS3Uri(uri);
  const endpoint =
    nonEmpty(options.endpoint) ??
    nonEmpty(env["AWS_ENDPOINT_URL_S3"]) ??
    nonEmpty(env["AWS_ENDPOINT_URL"]);
  if (endpoint !== undefined && !/^https?:\/\/[^/]/.test(endpoint)) {
    throw new Error(
      `[${PLUGIN}] invalid endpoint ${JSON.stringify(endpoint)}: use a URL such as https://<account>.r2.cloudflarestorage.com or http://127.0.0.1:9000`,
    );
  }
  const credentials = options.credentials;
  if (
    credentials !== undefined &&
    (!nonEmpty(credentials.accessKeyId) || !nonEmpty(credentials.secretAccessKey))
  ) {
    throw new Error(`[${PLUGIN}] option credentials needs both accessKeyId and secretAccessKey`);
  }
  return {
    bucket,
    prefix,
    endpoint,
    region:
      nonEmpty(options.region) ??
      nonEmpty(env["AWS_REGION"]) ??
      nonEmpty(env["AWS_DEFAULT_REGION"]) ??
      "us-east-1",
    forcePathStyle: options.forcePathStyle ?? endpoint !== undefined,
    maxAttempts: positiveInt(options.maxAttempts, "maxAttempts", 5),
    concurrency: positiveInt(options.concurrency, "concurrency", 50),
    credentialsFrom: credentials === undefined ? "environment" : "options",
  };
}

function contentType(key: string): string {
  if (key.endsWith(".json")) return "application/json";
  if (key.endsWith(".jsonl")) return "application/x-ndjson";
  if (key.endsWith(".log") || key.endsWith(".txt")) return "text/plain; charset=utf-8";
  if (key.endsWith(".yaml") || key.endsWith(".yml")) return "application/yaml";
  if (key.endsWith(".html")) return "text/html; charset=utf-8";
  if (key.endsWith(".svg")) return "image/svg+xml";
  if (key.endsWith(".png")) return "image/png";
  return "application/octet-stream";
}

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string; attempts?: number };
}

function shape(error: unknown): SdkErrorShape {
  return typeof error === "object" && error !== null ? error : {};
}

function isNotFoundKey(error: unknown): boolean {
  const { name, $metadata } = shape(error);
  return name === "NoSuchKey" || ($metadata?.httpStatusCode === 404 && name !== "NoSuchBucket");
}

function isPreconditionFailed(error: unknown): boolean {
  const { name, $metadata } = shape(error);
  const status = $metadata?.httpStatusCode;
  return (
    name === "PreconditionFailed" ||
    name === "ConditionalRequestConflict" ||
    status === 412 ||
    status === 409
  );
}

/** The bytes of a value to store; pieces are joined, as a PUT states its length up front. */
function bodyOf(data: StorageData): Uint8Array {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  return data instanceof Uint8Array ? data : Buffer.from([...data].join(""), "utf8");
}

/**
 * CloudStorage in an S3 bucket, under an optional key prefix. Writes of one object are
 * atomic on S3; `putIfAbsent` is a conditional PUT (`If-None-Match: *`).
 *
 * @example
 * const storage = new S3Storage("s3://my-bucket/sweeps", { region: "eu-west-1" });
 * await storage.put("stages/s1/runs/a.json", "{}");
 */
export class S3Storage implements CloudStorage {
  /** `s3://bucket` or `s3://bucket/prefix`. */
  readonly uri: string;
  readonly settings: ResolvedS3Settings;
  /** The AWS SDK client, for what this interface does not cover. */
  readonly client: S3Client;
  readonly #keyPrefix: string;

  constructor(uri: string, options: S3StorageOptions = {}) {
    this.settings = resolveS3Settings(uri, options);
    const { bucket, prefix, endpoint, region, forcePathStyle, maxAttempts, concurrency } =
      this.settings;
    this.uri = prefix === "" ? `s3://${bucket}` : `s3://${bucket}/${prefix}`;
    this.#keyPrefix = prefix === "" ? "" : `${prefix}/`;
    const config: S3ClientConfig = {
      region,
      forcePathStyle,
      maxAttempts,
      retryMode: "standard",
      // S3-compatible stores (Ceph RGW, older MinIO) refuse the chunked trailing checksums
      // the SDK sends by default; send and check checksums only where S3 requires them.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: {
        connectionTimeout: 10_000,
        httpAgent: { keepAlive: true, maxSockets: concurrency },
        httpsAgent: { keepAlive: true, maxSockets: concurrency },
      },
    };
    if (endpoint !== undefined) config.endpoint = endpoint;
    if (options.credentials !== undefined) {
      const { accessKeyId, secretAccessKey, sessionToken } = options.credentials;
      config.credentials =
        sessionToken === undefined
          ? { accessKeyId, secretAccessKey }
          : { accessKeyId, secretAccessKey, sessionToken };
    }
    this.client = new S3Client(config);
  }

  get #bucket(): string {
    return this.settings.bucket;
  }

  async put(key: string, data: StorageData): Promise<void> {
    const objectKey = this.#objectKey(key);
    const body = bodyOf(data);
    try {
      if (body.byteLength > MULTIPART_THRESHOLD_BYTES) {
        await this.#upload(objectKey, body, body.byteLength);
      } else {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.#bucket,
            Key: objectKey,
            Body: body,
            ContentType: contentType(key),
          }),
        );
      }
    } catch (error) {
      throw this.#explain("write", key, error);
    }
  }

  async putIfAbsent(key: string, data: string | Uint8Array): Promise<boolean> {
    const objectKey = this.#objectKey(key);
    const body = bodyOf(data);
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: objectKey,
          Body: body,
          ContentType: contentType(key),
          IfNoneMatch: "*",
        }),
      );
      return true;
    } catch (error) {
      // 412: the key exists. 409 (AWS): another conditional write to it is in progress.
      if (isPreconditionFailed(error)) return false;
      throw this.#explain("write", key, error);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const objectKey = this.#objectKey(key);
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: objectKey }),
      );
      if (response.Body === undefined) return new Uint8Array();
      return await response.Body.transformToByteArray();
    } catch (error) {
      if (isNotFoundKey(error)) return undefined;
      throw this.#explain("read", key, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    assertValidPrefix(prefix, PLUGIN);
    const keys: string[] = [];
    let continuationToken: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#keyPrefix + prefix,
            ...(continuationToken === undefined ? {} : { ContinuationToken: continuationToken }),
          }),
        );
        for (const object of page.Contents ?? []) {
          if (object.Key?.startsWith(this.#keyPrefix))
            keys.push(object.Key.slice(this.#keyPrefix.length));
        }
        continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (continuationToken !== undefined);
    } catch (error) {
      throw this.#explain("list", prefix, error, "prefix");
    }
    return keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  async delete(key: string): Promise<void> {
    const objectKey = this.#objectKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: objectKey }));
    } catch (error) {
      if (isNotFoundKey(error)) return;
      throw this.#explain("delete", key, error);
    }
  }

  async uploadFile(key: string, localPath: string): Promise<void> {
    const objectKey = this.#objectKey(key);
    let sizeBytes: number;
    try {
      const info = await stat(localPath);
      if (info.isDirectory()) throw new Error("it is a folder; upload its files one by one");
      sizeBytes = info.size;
    } catch (error) {
      throw new Error(
        `[${PLUGIN}] cannot upload ${localPath} to ${this.#where(key)}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    try {
      await this.#upload(objectKey, createReadStream(localPath), sizeBytes);
    } catch (error) {
      throw this.#explain("upload", key, error);
    }
  }

  /** Closes the client's connections; the storage cannot be used afterwards. */
  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }

  /** A multipart upload (a single PUT when the body fits one part), parts sized to stay under S3's 10,000. */
  async #upload(objectKey: string, body: Uint8Array | Readable, sizeBytes: number): Promise<void> {
    const partSize = Math.max(MIN_PART_SIZE_BYTES, Math.ceil(sizeBytes / (MAX_PARTS - 1)));
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.#bucket,
        Key: objectKey,
        Body: body,
        ContentType: contentType(objectKey),
      },
      partSize,
      queueSize: Math.min(4, this.settings.concurrency),
      leavePartsOnError: false,
    });
    await upload.done();
  }

  #objectKey(key: string): string {
    assertValidKey(key, PLUGIN);
    return this.#keyPrefix + key;
  }

  #where(key: string): string {
    return `s3://${this.#bucket}/${this.#keyPrefix}${key}`;
  }

  #server(): string {
    return this.settings.endpoint ?? `AWS S3 (${this.settings.region})`;
  }

  /** Turns an SDK error into one that says what failed, where, and what to check. */
  #explain(action: Action, key: string, error: unknown, what: "key" | "prefix" = "key"): Error {
    const { name = "Error", code, message = String(error), $metadata } = shape(error);
    const status = $metadata?.httpStatusCode;
    const attempts = $metadata?.attempts ?? 1;
    const where = what === "key" ? this.#where(key) : `${this.#where(key)}* (prefix)`;
    const doing = `${ING[action]} ${where}`;
    const credentialVars =
      this.settings.credentialsFrom === "options"
        ? "the credentials option"
        : "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the credentials option)";
    const requestId =
      $metadata?.requestId === undefined ? "" : ` [request id ${$metadata.requestId}]`;
    let text: string;
    if (name === "InvalidAccessKeyId") {
      text = `access denied ${doing}: ${this.#server()} does not know the access key id (${name}); check ${credentialVars}`;
    } else if (name === "SignatureDoesNotMatch") {
      text = `access denied ${doing}: the secret key does not match the access key id (${name}); check ${credentialVars}`;
    } else if (
      name === "AccessDenied" ||
      name === "Forbidden" ||
      name === "AllAccessDisabled" ||
      status === 403
    ) {
      text = `access denied ${doing} (${name}): check ${credentialVars}, and that they may ${action} in bucket ${this.#bucket} (${PERMISSION[action]})`;
    } else if (name === "NoSuchBucket") {
      text = `bucket ${JSON.stringify(this.#bucket)} does not exist at ${this.#server()} (${doing}): create it, or fix the bucket in the storage URI`;
    } else if (
      name === "PermanentRedirect" ||
      name === "AuthorizationHeaderMalformed" ||
      status === 301
    ) {
      text = `bucket ${JSON.stringify(this.#bucket)} is not in region ${this.settings.region} (${name}, ${doing}): set AWS_REGION or the region option to the bucket's region`;
    } else if (name === "CredentialsProviderError") {
      text = `no credentials found for ${doing}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass the credentials option (${message})`;
    } else if ((code !== undefined && NETWORK_CODES.has(code)) || name === "TimeoutError") {
      text = `cannot reach ${this.#server()} (${code ?? name}) ${doing} after ${attempts} attempt${attempts === 1 ? "" : "s"}: check AWS_ENDPOINT_URL_S3 or the endpoint option, and that the server is up`;
    } else if (status !== undefined && status >= 500) {
      text = `${doing} failed after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${this.#server()} answered HTTP ${status} (${name}: ${message}); try again later, or raise maxAttempts`;
    } else {
      text = `${doing} failed: ${name}${status === undefined ? "" : ` (HTTP ${status})`}: ${message}`;
    }
    return new Error(`[${PLUGIN}] ${text}${requestId}`, { cause: error });
  }
}

/**
 * Opens an S3Storage for `s3://bucket/prefix`. Core's `createStorage` calls this for
 * `s3://` URIs.
 *
 * @example
 * const storage = await createS3Storage("s3://sweeps", { endpoint: "http://127.0.0.1:9000" });
 */
export function createS3Storage(uri: string, options: S3StorageOptions = {}): Promise<S3Storage> {
  return Promise.resolve().then(() => new S3Storage(uri, options));
}
