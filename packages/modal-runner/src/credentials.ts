import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { parse } from "smol-toml";

/** A Modal token and where it was found. */
export interface ModalCredentials {
  tokenId: string;
  tokenSecret: string;
  /** `options`, `env` (MODAL_TOKEN_ID / MODAL_TOKEN_SECRET) or `profile:<name>` (the Modal config file). */
  source: string;
}

export interface CredentialOptions {
  tokenId?: string | undefined;
  tokenSecret?: string | undefined;
}

const HOW_TO =
  "run `modal token new` (it writes ~/.modal.toml), or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET " +
  "(a token from https://modal.com/settings/tokens; in GitHub Actions, from repository secrets)";

/** Thrown when no Modal token can be found; says both ways to provide one. */
export class ModalCredentialsError extends Error {
  override name = "ModalCredentialsError";
}

/** The Modal config file's path: `MODAL_CONFIG_PATH`, else `~/.modal.toml`. */
export function modalConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env["MODAL_CONFIG_PATH"] || path.join(homedir(), ".modal.toml");
}

function readProfile(
  env: NodeJS.ProcessEnv,
): { name: string; tokenId?: string; tokenSecret?: string } | undefined {
  const file = modalConfigPath(env);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ModalCredentialsError(
      `[modal-runner] cannot read the Modal config file ${file}: ${(error as Error).message}`,
    );
  }
  let config: Record<string, unknown>;
  try {
    config = parse(text);
  } catch (error) {
    throw new ModalCredentialsError(
      `[modal-runner] the Modal config file ${file} is not valid TOML (${(error as Error).message}); fix it or ${HOW_TO}`,
    );
  }
  const profiles = Object.entries(config).filter(
    (entry): entry is [string, Record<string, unknown>] =>
      entry[1] !== null && typeof entry[1] === "object",
  );
  const wanted = env["MODAL_PROFILE"];
  let chosen: [string, Record<string, unknown>] | undefined;
  if (wanted) {
    chosen = profiles.find(([name]) => name === wanted);
    if (!chosen) {
      throw new ModalCredentialsError(
        `[modal-runner] MODAL_PROFILE=${wanted} but ${file} has no [${wanted}] profile (it has ${profiles.map(([name]) => name).join(", ") || "none"})`,
      );
    }
  } else {
    chosen =
      profiles.find(([, profile]) => profile["active"] === true) ??
      (profiles.length === 1 ? profiles[0] : undefined);
  }
  if (!chosen) return undefined;
  const [name, profile] = chosen;
  const tokenId = typeof profile["token_id"] === "string" ? profile["token_id"] : undefined;
  const tokenSecret =
    typeof profile["token_secret"] === "string" ? profile["token_secret"] : undefined;
  return { name, ...(tokenId ? { tokenId } : {}), ...(tokenSecret ? { tokenSecret } : {}) };
}

/**
 * Finds the Modal token to use, before anything is created: the options, else
 * MODAL_TOKEN_ID / MODAL_TOKEN_SECRET, else the active profile of the Modal config file
 * (`MODAL_CONFIG_PATH` or `~/.modal.toml`, profile `MODAL_PROFILE`). Throws a
 * {@link ModalCredentialsError} naming both ways to provide one when there is none.
 */
export function resolveModalCredentials(
  options: CredentialOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): ModalCredentials {
  if (options.tokenId && options.tokenSecret) {
    return { tokenId: options.tokenId, tokenSecret: options.tokenSecret, source: "options" };
  }
  if (options.tokenId || options.tokenSecret) {
    throw new ModalCredentialsError(
      `[modal-runner] the options give ${options.tokenId ? "tokenId" : "tokenSecret"} without ${options.tokenId ? "tokenSecret" : "tokenId"}; give both, or neither and ${HOW_TO}`,
    );
  }
  const envId = env["MODAL_TOKEN_ID"];
  const envSecret = env["MODAL_TOKEN_SECRET"];
  if (envId && envSecret) return { tokenId: envId, tokenSecret: envSecret, source: "env" };
  if (envId || envSecret) {
    throw new ModalCredentialsError(
      `[modal-runner] ${envId ? "MODAL_TOKEN_ID" : "MODAL_TOKEN_SECRET"} is set but ${envId ? "MODAL_TOKEN_SECRET" : "MODAL_TOKEN_ID"} is not; set both, or unset both and run \`modal token new\``,
    );
  }
  const profile = readProfile(env);
  if (profile?.tokenId && profile.tokenSecret) {
    return {
      tokenId: profile.tokenId,
      tokenSecret: profile.tokenSecret,
      source: `profile:${profile.name}`,
    };
  }
  const where = profile
    ? `profile [${profile.name}] of ${modalConfigPath(env)} has no token_id/token_secret`
    : `MODAL_TOKEN_ID / MODAL_TOKEN_SECRET are not set and ${modalConfigPath(env)} has no usable profile`;
  throw new ModalCredentialsError(`[modal-runner] no Modal credentials: ${where}; ${HOW_TO}`);
}
