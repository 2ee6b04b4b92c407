import { ModalClient, NotFoundError, type LogLevel } from "modal";
import { ClientError, Status } from "nice-grpc";
import { resolveModalCredentials } from "./credentials.ts";

export interface TerminateSandboxesOptions {
  /** Modal token; default MODAL_TOKEN_ID / MODAL_TOKEN_SECRET, else the Modal profile. */
  tokenId?: string;
  tokenSecret?: string;
  /** Modal environment; default the profile's. */
  environment?: string;
  /** The Modal SDK's log level. */
  logLevel?: LogLevel;
}

/** What {@link terminateSandboxes} did. */
export interface TerminateSandboxesReport {
  /** Terminated now, or already gone. */
  terminated: string[];
  /** Could not be terminated, with why. */
  failed: Array<{ sandboxId: string; error: string }>;
}

/**
 * Terminates sandboxes by id from anywhere (the GitHub action's post step ends what its
 * main step could not). Sandboxes already gone count as terminated; it never throws for
 * one sandbox, only when no Modal token can be found.
 *
 * @example
 * const report = await terminateSandboxes(["sb-…", "sb-…"]);
 * if (report.failed.length) console.warn(report.failed);
 */
export async function terminateSandboxes(
  sandboxIds: readonly string[],
  options: TerminateSandboxesOptions = {},
): Promise<TerminateSandboxesReport> {
  const report: TerminateSandboxesReport = { terminated: [], failed: [] };
  if (sandboxIds.length === 0) return report;
  const credentials = resolveModalCredentials(options);
  const modal = new ModalClient({
    tokenId: credentials.tokenId,
    tokenSecret: credentials.tokenSecret,
    ...(options.environment === undefined ? {} : { environment: options.environment }),
    ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel }),
  });
  try {
    await Promise.all(
      [...new Set(sandboxIds)].map(async (sandboxId) => {
        try {
          const sandbox = await modal.sandboxes.fromId(sandboxId);
          await sandbox.terminate();
          sandbox.detach();
          report.terminated.push(sandboxId);
        } catch (error) {
          if (
            error instanceof NotFoundError ||
            (error instanceof ClientError && error.code === Status.NOT_FOUND)
          ) {
            report.terminated.push(sandboxId);
          } else {
            report.failed.push({
              sandboxId,
              error: `[modal-runner] terminating sandbox ${sandboxId} failed: ${(error as Error).message}`,
            });
          }
        }
      }),
    );
  } finally {
    modal.close();
  }
  return report;
}
