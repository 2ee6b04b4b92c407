/**
 * The base config of a stage run from a file (DESIGN.md section 3): an explicit file,
 * else `<config_dir>/base.yaml` when it exists, else `{}`. The CLI (`--base-config`) and
 * the action (`base-config` input) read it the same way.
 */
import { access, readFile } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "./config-error.ts";
import type { StageConfig } from "./schemas.ts";
import { parseYaml } from "./yaml-file.ts";

export interface BaseConfigOptions {
  /** Folder relative paths resolve from; default `process.cwd()`. */
  projectRoot?: string;
  /** An explicit base config file; it must exist. */
  file?: string | undefined;
  /** Where config paths resolve when the stage has no `config_dir`; default `exp_configs`. */
  defaultConfigDir?: string;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads the base config for a stage: `options.file` when given (a ConfigError when it is
 * missing), else `<config_dir>/base.yaml` when it exists, else `{}`. The file must hold a
 * mapping; errors name the file.
 *
 * @example
 * const baseConfig = await loadBaseConfig(stage, { projectRoot: process.cwd() });
 */
export async function loadBaseConfig(
  stage: StageConfig,
  options: BaseConfigOptions = {},
): Promise<Record<string, unknown>> {
  const root = options.projectRoot ?? process.cwd();
  const explicit = options.file;
  const file = explicit
    ? path.resolve(root, explicit)
    : path.resolve(root, stage.configDir ?? options.defaultConfigDir ?? "exp_configs", "base.yaml");
  if (!explicit && !(await exists(file))) return {};
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new ConfigError(
      "base config not found; check the path of the base config file",
      { file },
      { cause: error },
    );
  }
  const value = parseYaml(text, file).value ?? {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError("a base config must be a mapping of keys", { file });
  }
  return value as Record<string, unknown>;
}
