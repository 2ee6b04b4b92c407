import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolveModalCredentials } from "./credentials.ts";

describe("resolveModalCredentials", () => {
  let dir: string;
  let configPath: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "modal-credentials-"));
    configPath = path.join(dir, "modal.toml");
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("prefers explicit options, then the two env vars", () => {
    const env = {
      MODAL_TOKEN_ID: "ak-env",
      MODAL_TOKEN_SECRET: "as-env",
      MODAL_CONFIG_PATH: configPath,
    };
    expect(resolveModalCredentials({ tokenId: "ak-opt", tokenSecret: "as-opt" }, env)).toEqual({
      tokenId: "ak-opt",
      tokenSecret: "as-opt",
      source: "options",
    });
    expect(resolveModalCredentials({}, env)).toEqual({
      tokenId: "ak-env",
      tokenSecret: "as-env",
      source: "env",
    });
  });

  it("reads the active profile of the Modal config file, or the one MODAL_PROFILE names", () => {
    writeFileSync(
      configPath,
      '[work]\ntoken_id = "ak-work"\ntoken_secret = "as-work"\n\n[home]\ntoken_id = "ak-home"\ntoken_secret = "as-home"\nactive = true\n',
    );
    expect(resolveModalCredentials({}, { MODAL_CONFIG_PATH: configPath })).toEqual({
      tokenId: "ak-home",
      tokenSecret: "as-home",
      source: "profile:home",
    });
    expect(
      resolveModalCredentials({}, { MODAL_CONFIG_PATH: configPath, MODAL_PROFILE: "work" }).tokenId,
    ).toBe("ak-work");
    expect(() =>
      resolveModalCredentials({}, { MODAL_CONFIG_PATH: configPath, MODAL_PROFILE: "other" }),
    ).toThrow(/MODAL_PROFILE=other but .* has no \[other\] profile \(it has work, home\)/);
  });

  it("fails, naming both ways to provide a token, when there is none", () => {
    const error = (() => {
      try {
        resolveModalCredentials({}, { MODAL_CONFIG_PATH: configPath });
      } catch (caught) {
        return caught as Error;
      }
      return undefined;
    })();
    expect(error?.name).toBe("ModalCredentialsError");
    expect(error?.message).toMatch(/^\[modal-runner\] no Modal credentials/);
    expect(error?.message).toContain("modal token new");
    expect(error?.message).toContain("MODAL_TOKEN_ID and MODAL_TOKEN_SECRET");
  });

  it("says which half is missing when only one env var is set", () => {
    expect(() =>
      resolveModalCredentials({}, { MODAL_TOKEN_ID: "ak", MODAL_CONFIG_PATH: configPath }),
    ).toThrow(/MODAL_TOKEN_ID is set but MODAL_TOKEN_SECRET is not/);
  });
});
