/**
 * Packs the project into a `.tar.gz` to send into a sandbox: the files git knows
 * (tracked, plus untracked ones .gitignore does not exclude), or every file when the
 * folder is not a git work tree, less an ignore list, under a size limit.
 */
import { execFile } from "node:child_process";
import { lstat, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { create } from "tar";

/** Left out of every upload (by name, at any depth). */
export const DEFAULT_UPLOAD_IGNORE: readonly string[] = [
  ".git",
  "node_modules",
  "outputs",
  "cache",
  "results",
  ".tmgg",
  ".turbo",
  "__pycache__",
  ".venv",
  "venv",
  "wandb",
  "*.pyc",
];

/** Default upload limit: 200 MiB before compression. */
export const DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024;

export interface PackOptions {
  /** Extra patterns to leave out, added to {@link DEFAULT_UPLOAD_IGNORE}. */
  ignore?: readonly string[];
  /** Most bytes (before compression) the files may add up to. */
  maxBytes?: number;
}

export interface PackedProject {
  /** The `.tar.gz` written. */
  file: string;
  /** Paths packed, relative to the project root, POSIX separators. */
  files: string[];
  /** Their total size before compression. */
  sizeBytes: number;
  /** How the files were listed. */
  listedBy: "git" | "walk";
}

function globToRegExp(glob: string): RegExp {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i]!;
    if (char === "*") {
      if (glob[i + 1] === "*") {
        out += ".*";
        i++;
      } else {
        out += "[^/]*";
      }
    } else if (char === "?") {
      out += "[^/]";
    } else {
      out += char.replace(/[.+^${}()|[\]\\]/g, "\\$&");
    }
  }
  return new RegExp(`^${out}$`);
}

/**
 * A matcher for ignore patterns: a pattern without `/` matches a file or folder name at
 * any depth (`node_modules`, `*.ckpt`); one with `/` matches a path from the project root
 * (`data/raw`, `logs/**`), the folder's whole content included.
 */
export function ignoreMatcher(patterns: readonly string[]): (relativePath: string) => boolean {
  const byName: RegExp[] = [];
  const byPath: RegExp[] = [];
  for (const raw of patterns) {
    const pattern = raw.trim().replace(/^\.\//, "").replace(/\/+$/, "");
    if (!pattern) continue;
    if (pattern.includes("/")) byPath.push(globToRegExp(pattern.replace(/^\//, "")));
    else byName.push(globToRegExp(pattern));
  }
  return (relativePath) => {
    const parts = relativePath.split("/");
    if (parts.some((part) => byName.some((re) => re.test(part)))) return true;
    for (let i = 1; i <= parts.length; i++) {
      const prefix = parts.slice(0, i).join("/");
      if (byPath.some((re) => re.test(prefix))) return true;
    }
    return false;
  };
}

async function gitFiles(root: string): Promise<string[] | undefined> {
  try {
    const { stdout } = await promisify(execFile)(
      "git",
      ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
      { cwd: root, maxBuffer: 256 * 1024 * 1024, encoding: "utf8" },
    );
    return [...new Set(stdout.split("\0").filter(Boolean))];
  } catch {
    return undefined;
  }
}

async function walkFiles(
  root: string,
  ignored: (relativePath: string) => boolean,
): Promise<string[]> {
  const out: string[] = [];
  const visit = async (relativeDir: string): Promise<void> => {
    const entries = await readdir(path.join(root, relativeDir), { withFileTypes: true });
    for (const entry of entries) {
      const relativePath = relativeDir ? `${relativeDir}/${entry.name}` : entry.name;
      if (ignored(relativePath)) continue;
      if (entry.isDirectory()) await visit(relativePath);
      else if (entry.isFile() || entry.isSymbolicLink()) out.push(relativePath);
    }
  };
  await visit("");
  return out.sort();
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * Writes `<root>`'s files to `outFile` as a gzipped tarball (paths relative to `root`).
 * Throws, naming the largest files, when they add up to more than `maxBytes`.
 *
 * @example
 * const packed = await packProject(".", "/tmp/project.tar.gz", { ignore: ["data/raw"] });
 */
export async function packProject(
  root: string,
  outFile: string,
  options: PackOptions = {},
): Promise<PackedProject> {
  const absoluteRoot = path.resolve(root);
  const info = await stat(absoluteRoot).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new Error(
      `[modal-runner] the project root ${absoluteRoot} is not a folder; set the spec's projectRoot`,
    );
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const ignored = ignoreMatcher([...DEFAULT_UPLOAD_IGNORE, ...(options.ignore ?? [])]);
  const listed = await gitFiles(absoluteRoot);
  const candidates = listed
    ? listed.filter((file) => !ignored(file))
    : await walkFiles(absoluteRoot, ignored);
  const files: string[] = [];
  const sizes: Array<[string, number]> = [];
  let sizeBytes = 0;
  for (const file of candidates) {
    // git lists tracked files deleted from the work tree, and submodules as folders: skip both.
    const entry = await lstat(path.join(absoluteRoot, file)).catch(() => undefined);
    if (!entry || entry.isDirectory()) continue;
    files.push(file);
    sizes.push([file, entry.size]);
    sizeBytes += entry.size;
  }
  if (sizeBytes > maxBytes) {
    const largest = sizes
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([file, size]) => `${file} (${mib(size)})`)
      .join(", ");
    throw new Error(
      `[modal-runner] the project at ${absoluteRoot} is ${mib(sizeBytes)} to upload, over the limit of ${mib(maxBytes)} ` +
        `(option maxUploadBytes); largest files: ${largest}. Leave big files out with the uploadIgnore option or .gitignore, ` +
        `and put data in a Modal volume`,
    );
  }
  await create(
    { gzip: true, cwd: absoluteRoot, file: outFile, portable: true, noDirRecurse: true },
    files,
  );
  return { file: outFile, files, sizeBytes, listedBy: listed ? "git" : "walk" };
}
