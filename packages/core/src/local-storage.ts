/**
 * CloudStorage in a local folder: one file per key. Writes go to a temp file in the
 * key's folder and are renamed (or hard-linked, for put-if-absent) into place, so a
 * reader, another process or a crash never leaves or sees a partial value.
 */
import { randomBytes } from "node:crypto";
import { constants, createReadStream, createWriteStream } from "node:fs";
import {
  link,
  lstat,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rm,
  stat,
  unlink,
  writeFile,
} from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import {
  assertValidKey,
  assertValidPrefix,
  type CloudStorage,
  type PutOptions,
  type StorageData,
} from "./cloud-storage.ts";

const PLUGIN = "local-storage";
/** Temp files are `.tmgg-tmp-<24 hex>`; a key segment may not start with `.tmgg-tmp-`. */
const TEMP_PREFIX = ".tmgg-tmp-";
const TEMP_PATTERN = /^\.tmgg-tmp-[0-9a-f]{24}$/;
const PATH_BLOCKED = "a part of its path is an existing key (a file), not a folder";

function errorCode(error: unknown): string | undefined {
  return typeof error === "object" &&
    error !== null &&
    "code" in error &&
    typeof error.code === "string"
    ? error.code
    : undefined;
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * Stores each key as a file under `rootDir` (created by the first write; reads never create it).
 *
 * @example
 * const storage = new LocalStorage("./results");
 * await storage.put("stages/s1/runs/a.json", "{}");
 * await storage.list("stages/s1/runs/"); // ["stages/s1/runs/a.json"]
 */
export class LocalStorage implements CloudStorage {
  /** The absolute path of the root folder. */
  readonly uri: string;
  readonly #root: string;
  #realRoot: Promise<string> | undefined;
  /** Folders already checked to lie inside the root (not reached through a link). */
  readonly #insideDirs = new Set<string>();

  constructor(rootDir: string) {
    this.#root = path.resolve(rootDir);
    this.uri = this.#root;
  }

  async put(key: string, data: StorageData, options: PutOptions = {}): Promise<void> {
    const durable = options.durable ?? true;
    const file = this.#file(key);
    const dir = path.dirname(file);
    const temp = await this.#writeTemp("write", key, dir, (to) =>
      writeFile(to, data, { flag: "wx", flush: durable }),
    );
    try {
      await rename(temp, file);
    } catch (error) {
      await rm(temp, { force: true });
      throw this.#fail("write", key, error);
    }
    if (durable) await syncDir(dir);
  }

  async putIfAbsent(
    key: string,
    data: string | Uint8Array,
    options: PutOptions = {},
  ): Promise<boolean> {
    const durable = options.durable ?? true;
    const file = this.#file(key);
    const dir = path.dirname(file);
    const temp = await this.#writeTemp("write", key, dir, (to) =>
      writeFile(to, data, { flag: "wx", flush: durable }),
    );
    try {
      // link() never replaces an existing name: across processes exactly one caller wins,
      // and the name appears with its full content already written and synced.
      await link(temp, file);
    } catch (error) {
      if (errorCode(error) === "EEXIST" && !(await isDirectory(file))) return false;
      throw this.#fail("write", key, error);
    } finally {
      await rm(temp, { force: true });
    }
    if (durable) await syncDir(dir);
    return true;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const file = this.#file(key);
    try {
      await this.#checkInside("read", key, path.dirname(file));
      // O_NOFOLLOW: a key that is a symbolic link is refused rather than followed.
      const handle = await open(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
      try {
        const bytes = await handle.readFile();
        return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } finally {
        await handle.close();
      }
    } catch (error) {
      const code = errorCode(error);
      if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return undefined;
      throw this.#fail("read", key, error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    assertValidPrefix(prefix, PLUGIN);
    const slash = prefix.lastIndexOf("/");
    const startKey = slash === -1 ? "" : prefix.slice(0, slash);
    const startDir = startKey === "" ? this.#root : path.join(this.#root, ...startKey.split("/"));
    const keys: string[] = [];
    try {
      await this.#checkInside("list", prefix, startDir);
      await walk(startDir, startKey, prefix, keys);
    } catch (error) {
      const code = errorCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") return [];
      throw this.#fail("list", prefix, error, undefined, "prefix");
    }
    return keys.sort(compareUtf8);
  }

  async delete(key: string): Promise<void> {
    const file = this.#file(key);
    try {
      await this.#checkInside("delete", key, path.dirname(file));
      await unlink(file);
    } catch (error) {
      const code = errorCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") return;
      // A folder holds other keys; the key itself does not exist.
      if ((code === "EISDIR" || code === "EPERM") && (await isDirectory(file))) return;
      throw this.#fail("delete", key, error);
    }
  }

  async uploadFile(key: string, localPath: string): Promise<void> {
    const file = this.#file(key);
    const dir = path.dirname(file);
    const source = path.resolve(localPath);
    let sourceStat;
    try {
      sourceStat = await stat(source);
    } catch (error) {
      throw new Error(
        `[${PLUGIN}] cannot upload ${source} to key ${JSON.stringify(key)} in ${this.#root}: ${describe(error)}`,
        { cause: error },
      );
    }
    if (sourceStat.isDirectory()) {
      throw new Error(
        `[${PLUGIN}] cannot upload ${source} to key ${JSON.stringify(key)} in ${this.#root}: it is a folder; upload its files one by one`,
      );
    }
    const temp = await this.#writeTemp("upload", key, dir, (to) =>
      pipeline(createReadStream(source), createWriteStream(to, { flags: "wx", flush: true })),
    );
    try {
      await rename(temp, file);
    } catch (error) {
      await rm(temp, { force: true });
      throw this.#fail("upload", key, error);
    }
    await syncDir(dir);
  }

  #file(key: string): string {
    assertValidKey(key, PLUGIN);
    for (const segment of key.split("/")) {
      if (segment.startsWith(TEMP_PREFIX)) {
        throw new Error(
          `[${PLUGIN}] invalid key ${JSON.stringify(key)}: segments starting with "${TEMP_PREFIX}" are reserved for temp files`,
        );
      }
    }
    return path.join(this.#root, ...key.split("/"));
  }

  /** Creates `dir`, checks it lies inside the root, and writes a complete temp file there. */
  async #writeTemp(
    verb: string,
    key: string,
    dir: string,
    write: (temp: string) => Promise<void>,
  ): Promise<string> {
    const temp = path.join(dir, `${TEMP_PREFIX}${randomBytes(12).toString("hex")}`);
    // A folder this storage already made and checked is written to at once; should it have
    // been removed since, the write fails with ENOENT and the folder is made again.
    if (this.#insideDirs.has(dir)) {
      try {
        await write(temp);
        return temp;
      } catch (error) {
        await rm(temp, { force: true });
        if (errorCode(error) !== "ENOENT") throw this.#fail(verb, key, error);
        this.#insideDirs.delete(dir);
      }
    }
    try {
      await this.#checkAncestorInside(verb, key, dir);
      await mkdir(dir, { recursive: true });
    } catch (error) {
      // EEXIST here: mkdir met a file where a folder of the key's path should be.
      throw this.#fail(verb, key, error, errorCode(error) === "EEXIST" ? PATH_BLOCKED : undefined);
    }
    try {
      await this.#checkInside(verb, key, dir);
    } catch (error) {
      throw this.#fail(verb, key, error);
    }
    try {
      await write(temp);
    } catch (error) {
      await rm(temp, { force: true });
      throw this.#fail(verb, key, error);
    }
    return temp;
  }

  /**
   * Before creating `dir`: throws when its deepest existing folder below the root leads
   * outside the root, so that mkdir never creates folders through such a link.
   */
  async #checkAncestorInside(verb: string, key: string, dir: string): Promise<void> {
    if (this.#insideDirs.has(dir)) return;
    let ancestor = dir;
    while (ancestor !== this.#root && ancestor.startsWith(this.#root + path.sep)) {
      try {
        await lstat(ancestor);
        break;
      } catch (error) {
        if (errorCode(error) !== "ENOENT") return; // mkdir will report it
        ancestor = path.dirname(ancestor);
      }
    }
    // The root itself (or a folder above it, before the first write) needs no check.
    if (ancestor === this.#root || !ancestor.startsWith(this.#root + path.sep)) return;
    await this.#checkInside(verb, key, ancestor);
  }

  /** Throws unless `dir` resolves (through any symbolic links) to a folder inside the root. */
  async #checkInside(verb: string, key: string, dir: string): Promise<void> {
    if (this.#insideDirs.has(dir)) return;
    // Writes create the root (with the key's folder) before they get here; reads of a
    // missing root fail with ENOENT, which they treat as "no such key".
    this.#realRoot ??= realpath(this.#root);
    let realRoot: string;
    try {
      realRoot = await this.#realRoot;
    } catch (error) {
      this.#realRoot = undefined;
      throw error;
    }
    const real = await realpath(dir);
    if (real !== realRoot && !real.startsWith(realRoot + path.sep)) {
      throw new Error(
        `[${PLUGIN}] refusing to ${verb} ${JSON.stringify(key)}: ${dir} is a symbolic link to ${real}, outside the storage folder ${this.#root}; remove the link`,
      );
    }
    this.#insideDirs.add(dir);
  }

  #fail(verb: string, key: string, error: unknown, reasonOverride?: string, what = "key"): Error {
    if (error instanceof Error && error.message.startsWith(`[${PLUGIN}]`)) return error;
    let reason = describe(error);
    const code = errorCode(error);
    if (reasonOverride !== undefined) {
      reason = reasonOverride;
    } else if (code === "EISDIR" || code === "EEXIST") {
      reason = `a folder of that name holds other keys ("${key}/…"); in local storage a key cannot also be a folder`;
    } else if (code === "ENOTDIR") {
      reason = PATH_BLOCKED;
    } else if (code === "ELOOP") {
      reason = "it is a symbolic link, which local storage does not follow";
    } else if (code === "EACCES" || code === "EPERM") {
      reason = `permission denied (${describe(error)}); check the folder's owner and mode`;
    } else if (code === "ENOSPC") {
      reason = "the disk is full";
    } else if ((code === "ENOTSUP" || code === "EOPNOTSUPP") && verb === "write") {
      reason = `the filesystem does not support hard links, which put-if-absent needs (${describe(error)}); use a local disk`;
    }
    return new Error(
      `[${PLUGIN}] cannot ${verb} ${what} ${JSON.stringify(key)} in ${this.#root}: ${reason}`,
      {
        cause: error,
      },
    );
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function isDirectory(file: string): Promise<boolean> {
  try {
    return (await lstat(file)).isDirectory();
  } catch {
    return false;
  }
}

/** Makes a rename or link in `dir` durable; skipped where folders cannot be opened (Windows). */
async function syncDir(dir: string): Promise<void> {
  if (process.platform === "win32") return;
  try {
    const handle = await open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some filesystems refuse fsync on folders; the rename itself is still atomic.
  }
}

/** Collects files (never links, never temp files) under `dir` whose keys start with `prefix`. */
async function walk(dir: string, dirKey: string, prefix: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  const below: Promise<void>[] = [];
  for (const entry of entries) {
    if (TEMP_PATTERN.test(entry.name)) continue;
    const key = dirKey === "" ? entry.name : `${dirKey}/${entry.name}`;
    if (entry.isFile()) {
      if (key.startsWith(prefix)) out.push(key);
    } else if (entry.isDirectory() && (key.startsWith(prefix) || prefix.startsWith(`${key}/`))) {
      below.push(
        walk(path.join(dir, entry.name), key, prefix, out).catch((error: unknown) => {
          // A folder removed while listing holds no keys.
          if (errorCode(error) !== "ENOENT") throw error;
        }),
      );
    }
  }
  await Promise.all(below);
}
