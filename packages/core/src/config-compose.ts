/**
 * Config composition (DESIGN.md section 3): base ← architecture (into `model`) ← dataset
 * (into `data`) ← dotted hyperparameters ← seed, with config paths confined to `config_dir`.
 */
import { realpath, stat } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "./config-error.ts";
import { parseYaml, readTextFile } from "./yaml-file.ts";

export type ConfigObject = Record<string, unknown>;

/** A config file as read: its mapping, and whether it merges at the root (`# @package _global_`). */
export interface ConfigFile {
  /** The config path as written in the stage (`models/gnn/standard`). */
  name: string;
  file: string;
  value: ConfigObject;
  isGlobal: boolean;
}

function isPlainObject(value: unknown): value is ConfigObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Deep-merges `source` into a copy of `target`: objects merge, everything else replaces. */
export function deepMerge(target: ConfigObject, source: ConfigObject): ConfigObject {
  const out: ConfigObject = { ...target };
  for (const [key, value] of Object.entries(source)) {
    const current = out[key];
    out[key] =
      isPlainObject(current) && isPlainObject(value)
        ? deepMerge(current, value)
        : structuredClone(value);
  }
  return out;
}

/**
 * Sets a dotted key (`model.num_layers`) in place, creating objects on the way.
 * Throws when the path runs through a value that is not an object.
 */
export function setDotted(config: ConfigObject, dottedKey: string, value: unknown): void {
  const parts = dottedKey.split(".");
  let node = config;
  for (let i = 0; i < parts.length - 1; i++) {
    const part = parts[i]!;
    const next = node[part];
    if (next === undefined || next === null) {
      const created: ConfigObject = {};
      node[part] = created;
      node = created;
    } else if (isPlainObject(next)) {
      node = next;
    } else {
      throw new ConfigError(
        `hyperparameter "${dottedKey}" cannot be set: "${parts.slice(0, i + 1).join(".")}" is ${JSON.stringify(next)}, not a mapping`,
        { key: `hyperparameter_space.${dottedKey}` },
      );
    }
  }
  node[parts.at(-1)!] = value;
}

/**
 * Resolves a config path inside `configDir`: no absolute paths, no `..`, no symlink that
 * leads out of the folder. `.yaml` is added when the path has no extension.
 */
export async function resolveConfigPath(
  configDir: string,
  name: string,
  what: string,
): Promise<string> {
  const where = { key: what };
  if (
    name.trim() === "" ||
    path.isAbsolute(name) ||
    /^[A-Za-z]:/.test(name) ||
    name.includes("\\")
  ) {
    throw new ConfigError(
      `${what} "${name}" must be a relative path inside config_dir (${configDir})`,
      where,
    );
  }
  if (name.split("/").some((segment) => segment === ".." || segment === ".")) {
    throw new ConfigError(
      `${what} "${name}" may not contain "." or ".." segments: config paths stay inside config_dir (${configDir})`,
      where,
    );
  }
  const withExtension = /\.ya?ml$/.test(name) ? name : `${name}.yaml`;
  const candidate = path.resolve(configDir, withExtension);
  let rootReal: string;
  try {
    rootReal = await realpath(configDir);
  } catch (error) {
    throw new ConfigError(
      `config_dir "${configDir}" does not exist; create it or set config_dir in the stage`,
      { key: "config_dir" },
      { cause: error },
    );
  }
  let real: string;
  try {
    real = await realpath(candidate);
  } catch (error) {
    throw new ConfigError(`${what} "${name}" not found: expected the file ${candidate}`, where, {
      cause: error,
    });
  }
  if (real !== rootReal && !real.startsWith(rootReal + path.sep)) {
    throw new ConfigError(
      `${what} "${name}" resolves outside config_dir (${real}); symlinks may not leave ${configDir}`,
      where,
    );
  }
  if (!(await stat(real)).isFile()) {
    throw new ConfigError(`${what} "${name}" is not a file (${candidate})`, where);
  }
  return real;
}

const GLOBAL_PACKAGE = /^\s*#\s*@package\s+_global_\s*$/m;

/** Reads a config file from `configDir` (confined) as a mapping; an empty file is `{}`. */
export async function loadConfigFile(
  configDir: string,
  name: string,
  what: string,
): Promise<ConfigFile> {
  const file = await resolveConfigPath(configDir, name, what);
  const text = await readTextFile(file, `${what} config`);
  const value = parseYaml(text, file).value ?? {};
  if (!isPlainObject(value)) {
    throw new ConfigError(`${what} config "${name}" must be a mapping of keys`, {
      file,
      key: what,
    });
  }
  const head = text.split("\n").slice(0, 5).join("\n");
  return { name, file, value, isGlobal: GLOBAL_PACKAGE.test(head) };
}

/**
 * Puts a config file into its section: at the root for `_global_` files; otherwise
 * deep-merged into `section`, or replacing it when the file's `_target_` differs from the
 * section's (so no keys of another model leak in).
 */
export function mergeSection(
  config: ConfigObject,
  section: string,
  file: ConfigFile,
): ConfigObject {
  if (file.isGlobal) return deepMerge(config, file.value);
  const current = config[section];
  const out = { ...config };
  const targetDiffers =
    isPlainObject(current) &&
    "_target_" in current &&
    "_target_" in file.value &&
    current["_target_"] !== file.value["_target_"];
  out[section] =
    isPlainObject(current) && !targetDiffers
      ? deepMerge(current, file.value)
      : structuredClone(file.value);
  return out;
}
