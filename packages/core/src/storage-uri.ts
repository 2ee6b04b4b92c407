import path from "node:path";
import type { CloudStorage } from "./cloud-storage.ts";
import { LocalStorage } from "./local-storage.ts";

/** Imported by name only when an s3:// URI is used, so core never depends on it. */
const S3_PACKAGE: string = "@tmgg/s3-storage";

/**
 * Opens storage from a URI: a folder path (or `file://` URL) gives LocalStorage;
 * `s3://bucket/prefix` gives S3Storage from `@tmgg/s3-storage` (imported on demand).
 *
 * @example const storage = await createStorage("s3://my-bucket/sweeps");
 */
export async function createStorage(
  uri: string,
  options: Record<string, unknown> = {},
): Promise<CloudStorage> {
  if (uri.startsWith("s3://")) {
    let module: {
      createS3Storage?: (
        uri: string,
        options: Record<string, unknown>,
      ) => Promise<CloudStorage> | CloudStorage;
    };
    try {
      module = (await import(S3_PACKAGE)) as typeof module;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") {
        throw new Error(
          `[storage] ${uri} needs the package @tmgg/s3-storage: npm install @tmgg/s3-storage`,
          { cause: error },
        );
      }
      throw error;
    }
    if (typeof module.createS3Storage !== "function") {
      throw new Error(
        "[storage] @tmgg/s3-storage does not export createS3Storage; install a matching version",
      );
    }
    return module.createS3Storage(uri, options);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !uri.startsWith("file://")) {
    throw new Error(
      `[storage] unsupported storage URI ${uri}: use a folder path or s3://bucket/prefix`,
    );
  }
  const folder = uri.startsWith("file://") ? new URL(uri).pathname : uri;
  return new LocalStorage(path.resolve(folder));
}
