/**
 * Runs exactly the commit that was authorized: the PR's head SHA as GitHub reports it,
 * not a branch ref someone could push to between the comment and the checkout.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);
const SHA = /^[0-9a-f]{40}$/;

/** Why the workspace could not be put at the commit; the message is shown to the user. */
export class CheckoutError extends Error {
  override readonly name = "CheckoutError";
}

async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await run("git", args, { cwd, maxBuffer: 1024 * 1024, timeout: 120_000 });
  return stdout.trim();
}

async function head(cwd: string): Promise<string | null> {
  try {
    return await git(cwd, ["rev-parse", "HEAD"]);
  } catch {
    return null;
  }
}

function firstLine(error: unknown): string {
  const stderr = (error as { stderr?: unknown }).stderr;
  const text = typeof stderr === "string" && stderr.trim() ? stderr : (error as Error).message;
  return text.trim().split("\n").slice(-1)[0] ?? "";
}

/**
 * Makes sure the workspace's HEAD is `sha`: when it is another commit, fetches `sha` from
 * `origin` and checks it out detached. Throws CheckoutError when that is not possible.
 *
 * @returns whether HEAD had to be moved.
 */
export async function checkoutCommit(
  cwd: string,
  sha: string,
): Promise<{ moved: boolean; from: string | null }> {
  if (!SHA.test(sha))
    throw new CheckoutError(`[action] the pull request's head "${sha}" is not a commit SHA`);
  const from = await head(cwd);
  if (from === sha) return { moved: false, from };
  const hint =
    "check out the repository first with actions/checkout (fetch-depth: 0, or ref: the PR head SHA) so the action can run exactly the commit that was authorized";
  if (from === null) throw new CheckoutError(`[action] ${cwd} is not a git checkout; ${hint}`);
  try {
    await git(cwd, ["cat-file", "-e", `${sha}^{commit}`]);
  } catch {
    try {
      await git(cwd, ["fetch", "--no-tags", "--quiet", "origin", sha]);
    } catch (error) {
      throw new CheckoutError(
        `[action] the workspace is at ${from.slice(0, 7)}, not the PR head ${sha.slice(0, 7)}, and fetching ${sha.slice(0, 7)} from origin failed (${firstLine(error)}); ${hint}`,
      );
    }
  }
  try {
    await git(cwd, ["checkout", "--quiet", "--detach", sha]);
  } catch (error) {
    throw new CheckoutError(
      `[action] could not check out the PR head ${sha.slice(0, 7)} in ${cwd} (${firstLine(error)}); the workspace must have no local changes`,
    );
  }
  const now = await head(cwd);
  if (now !== sha)
    throw new CheckoutError(
      `[action] after checkout HEAD is ${now ?? "unknown"}, not the PR head ${sha}`,
    );
  return { moved: true, from };
}

/** HEAD of the workspace, for events without a pull request. */
export async function currentCommit(cwd: string): Promise<string | null> {
  return head(cwd);
}
