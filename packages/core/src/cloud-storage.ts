/**
 * A small key/blob store. Keys are `/`-separated relative paths without `..` segments.
 * `LocalStorage` (core) and `S3Storage` (@tmgg/s3-storage) implement it; the results
 * layout (`ResultStore`) is built on top.
 */
/** A value to store: whole, or as text in pieces (see `CloudStorage.put`). */
export type StorageData = string | Uint8Array | Iterable<string>;

/** How `put` and `putIfAbsent` write. */
export interface PutOptions {
  /**
   * Default true: the value survives a machine crash once the call returns. False for
   * values worth nothing after a crash (a run's lease): a store may then skip flushing
   * to disk, which costs a local disk more than the write itself. Atomic either way.
   */
  durable?: boolean;
}

export interface CloudStorage {
  /** Where it stores, as a URI (`/abs/path` or `s3://bucket/prefix`). */
  readonly uri: string;
  /**
   * Writes atomically: readers see the old value or the new one, never a part. `data` may
   * come in pieces (iterated once, in order), so that a large value is never held whole.
   */
  put(key: string, data: StorageData, options?: PutOptions): Promise<void>;
  /** Writes only when the key does not exist; true when this call wrote it. */
  putIfAbsent(key: string, data: string | Uint8Array, options?: PutOptions): Promise<boolean>;
  /** The stored bytes, or undefined when the key does not exist. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Every key that starts with `prefix`, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Deletes a key; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Streams a local file of any size to `key`. */
  uploadFile(key: string, localPath: string): Promise<void>;
  /** Releases connections. Optional. */
  close?(): Promise<void>;
}

/** Throws unless `key` is a relative `/`-separated path with no empty, `.` or `..` segment. */
export function assertValidKey(key: string, plugin = "storage"): void {
  const segments = key.split("/");
  if (
    key.length === 0 ||
    key.includes("\\") ||
    key.includes("\0") ||
    segments.some((s) => s === "" || s === "." || s === "..")
  ) {
    throw new Error(
      `[${plugin}] invalid key ${JSON.stringify(key)}: use a relative path of non-empty segments without '.', '..' or backslashes`,
    );
  }
}

/** Throws unless `prefix` is "" or a valid key, optionally ending in `/`. */
export function assertValidPrefix(prefix: string, plugin = "storage"): void {
  if (prefix === "") return;
  try {
    assertValidKey(prefix.endsWith("/") ? prefix.slice(0, -1) : prefix, plugin);
  } catch (error) {
    throw new Error(
      `[${plugin}] invalid prefix ${JSON.stringify(prefix)}: use "" or a relative path of non-empty segments without '.', '..' or backslashes`,
      { cause: error },
    );
  }
}
