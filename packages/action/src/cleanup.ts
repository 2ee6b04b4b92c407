/**
 * The `post` step (`post-if: always()`): runs after the main step however it ended,
 * cancellation included. It terminates Modal sandboxes the main step could not, and
 * marks the sticky comment when the main step never wrote its final report.
 */
import * as core from "@actions/core";
import { context } from "@actions/github";
import { terminateSandboxes } from "@tmgg/modal-runner";
import { GitHubApi } from "./github-api.ts";
import { STATE } from "./state.ts";

export const INTERRUPTED_NOTE =
  "> ⏹️ **The job ended before the sweep finished** (cancelled or timed out). Finished runs are saved in the results storage and are skipped by the next `/sweep`.";

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function savedSandboxes(): string[] {
  const raw = core.getState(STATE.sandboxes);
  if (!raw) return [];
  try {
    const ids: unknown = JSON.parse(raw);
    return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === "string") : [];
  } catch {
    return [];
  }
}

async function endSandboxes(): Promise<void> {
  const ids = savedSandboxes();
  if (ids.length === 0) return;
  const tokenId = core.getInput("modal-token-id");
  const tokenSecret = core.getInput("modal-token-secret");
  const report = await terminateSandboxes(ids, {
    ...(tokenId ? { tokenId } : {}),
    ...(tokenSecret ? { tokenSecret } : {}),
  });
  core.info(`terminated ${report.terminated.length} Modal sandboxes left by the main step`);
  for (const failure of report.failed) core.warning(failure.error);
}

async function markInterrupted(): Promise<void> {
  const commentId = Number(core.getState(STATE.commentId));
  if (!commentId || core.getState(STATE.phase) === "reported") return;
  const api = new GitHubApi(core.getInput("github-token"), context.repo.owner, context.repo.repo);
  const body = await api.getCommentBody(commentId);
  if (body === null || body.includes(INTERRUPTED_NOTE)) return;
  const [marker = "", ...rest] = body.split("\n");
  const next = `${marker}\n${INTERRUPTED_NOTE}\n\n${rest.join("\n")}`;
  if (next.length <= 65_536) await api.updateComment(commentId, next);
}

/** Never fails the job: what it cannot clean up becomes a warning. */
export async function runPost(): Promise<void> {
  for (const [what, step] of [
    ["terminating Modal sandboxes", endSandboxes],
    ["marking the comment interrupted", markInterrupted],
  ] as const) {
    try {
      await step();
    } catch (error) {
      core.warning(`[action] post step: ${what} failed: ${errorMessage(error)}`);
    }
  }
}
