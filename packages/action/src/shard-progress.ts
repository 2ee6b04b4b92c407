/**
 * Progress of a sharded sweep in the stage's sticky comment: one line per shard job, each
 * job editing only its own line. Jobs run at once, so every write reads the comment
 * first and puts its line among the others; a line lost to two jobs writing at the same
 * moment comes back with that job's next write, and a job's last line is read back and
 * written again when it is gone. Best effort: the aggregate job then replaces the whole
 * comment with the report of every run.
 */
import type { Shard } from "@tmgg/core";
import type { CommentRef, GitHubApi } from "./github-api.ts";
import { code, markerComment } from "./messages.ts";
import { MAX_COMMENT_CHARS } from "./sticky-comment.ts";
import { ThrottledWriter } from "./throttled-writer.ts";

/** What one shard job has done so far. */
export interface ShardProgress {
  shard: Shard;
  state: "running" | "finished" | "cancelled";
  total: number;
  completed: number;
  failed: number;
  running: number;
  skipped: number;
  /** Runs left to another sweep that held them. */
  claimed: number;
  /** Runs the budget kept from starting. */
  notStarted: number;
}

/** Who writes the lines: the workflow run (its shards share one comment body) and the header facts. */
export interface ShardCommentContext {
  marker: string;
  stage: string;
  /** `GITHUB_RUN_ID`: lines of an earlier workflow run are dropped, re-run attempts keep them. */
  runKey: string;
  commitSha: string;
  runUrl: string | undefined;
}

const LINE_PATTERN = /^- .*<!-- tmgg-shard:(\d+)\/(\d+) -->$/;

function lineTag(shard: Shard): string {
  return `<!-- tmgg-shard:${shard.index}/${shard.count} -->`;
}

function bodyTag(context: ShardCommentContext, count: number): string {
  return `<!-- tmgg-shards:${context.runKey.replace(/[^0-9A-Za-z_-]/g, "")}:${count} -->`;
}

/** One shard's line (no user text in it, only numbers). */
export function shardLine(progress: ShardProgress): string {
  const { shard } = progress;
  const done = progress.completed + progress.failed + progress.skipped;
  const isClean = progress.failed === 0;
  const head =
    progress.state === "running"
      ? "⏳ running"
      : progress.state === "cancelled"
        ? "⏹️ cancelled"
        : isClean
          ? "✅ finished"
          : "⚠️ finished";
  const counts = [
    `✅ ${progress.completed} completed`,
    `❌ ${progress.failed} failed`,
    ...(progress.state === "running" ? [`🔄 ${progress.running} running`] : []),
    ...(progress.skipped > 0 ? [`⏭️ ${progress.skipped} skipped`] : []),
    ...(progress.claimed > 0 ? [`🤝 ${progress.claimed} claimed by another sweep`] : []),
    ...(progress.notStarted > 0 ? [`💰 ${progress.notStarted} not started (budget)`] : []),
  ];
  return `- **shard ${shard.index} of ${shard.count}** ${head}: ${done} of ${progress.total} runs done · ${counts.join(" · ")} ${lineTag(shard)}`;
}

/**
 * The comment body with this shard's line put in: the lines of the other shards of the
 * same workflow run are kept (in shard order), anything else the comment held is replaced.
 */
export function withShardLine(
  current: string | null,
  context: ShardCommentContext,
  shard: Shard,
  line: string,
): string {
  const tag = bodyTag(context, shard.count);
  const lines = new Map<number, string>();
  if (current?.includes(tag)) {
    for (const text of current.split("\n")) {
      const match = LINE_PATTERN.exec(text);
      if (match && Number(match[2]) === shard.count) lines.set(Number(match[1]), text);
    }
  }
  lines.set(shard.index, line);
  const facts = [
    `commit \`${context.commitSha.slice(0, 7)}\``,
    ...(context.runUrl ? [`[workflow run](${context.runUrl})`] : []),
  ];
  return [
    markerComment(context.marker),
    `## ⏳ Sweep ${code(context.stage, 60)}: running in ${shard.count} shards`,
    tag,
    "",
    `Each shard job updates its own line; the aggregate job after them replaces this comment with the report of every run. ${facts.join(" · ")}`,
    "",
    ...[...lines.entries()].sort((a, b) => a[0] - b[0]).map(([, text]) => text),
  ].join("\n");
}

/** Reads of a shard's last line: at least two (the second catches a write from a stale read), at most four. */
const MIN_CHECKS = 2;
const MAX_CHECKS = 4;

/**
 * One shard job's line in the sticky comment, written as the job goes (throttled). It only
 * edits a comment that exists (the gate job's ⏳ queued comment, or the stage's last
 * report), never creates one, so shard jobs that start at once cannot make two.
 */
export class ShardProgressComment {
  readonly #api: GitHubApi;
  readonly #issueNumber: number;
  readonly #context: ShardCommentContext;
  readonly #shard: Shard;
  readonly #intervalMs: number;
  readonly #writer: ThrottledWriter<string, CommentRef | null>;
  #ref: CommentRef | null | undefined;

  constructor(
    api: GitHubApi,
    issueNumber: number,
    context: ShardCommentContext,
    shard: Shard,
    intervalMs: number,
  ) {
    this.#api = api;
    this.#issueNumber = issueNumber;
    this.#context = context;
    this.#shard = shard;
    this.#intervalMs = intervalMs;
    this.#writer = new ThrottledWriter((line) => this.#put(line), intervalMs);
  }

  /** Told about failed writes (they never stop a sweep). */
  get onError(): (error: unknown) => void {
    return this.#writer.onError;
  }

  set onError(handler: (error: unknown) => void) {
    this.#writer.onError = handler;
  }

  /** Writes the line now, after any write in flight; null when there is no comment to edit. */
  write(line: string): Promise<CommentRef | null> {
    return this.#writer.write(line);
  }

  /** Queues a line: written once the last write is `intervalMs` old; only the newest is kept. */
  update(line: string): void {
    this.#writer.update(line);
  }

  /**
   * Writes the shard's last line, then reads it back a few times, a moment apart, and
   * writes it again when another job's write (made from an older read) took it out.
   */
  async finish(line: string): Promise<CommentRef | null> {
    this.#writer.close();
    let ref = await this.write(line);
    if (!ref) return null;
    const delayMs = Math.min(2_000, Math.max(100, this.#intervalMs / 5));
    for (let check = 1; check <= MAX_CHECKS; check++) {
      await new Promise((resolve) => setTimeout(resolve, delayMs * (1 + Math.random())));
      const body = await this.#api.getCommentBody(ref.id);
      const isThere = body?.split("\n").includes(line) ?? false;
      if (isThere && check >= MIN_CHECKS) break;
      if (!isThere) ref = (await this.write(line)) ?? ref;
    }
    return ref;
  }

  close(): void {
    this.#writer.close();
  }

  async #put(line: string): Promise<CommentRef | null> {
    if (this.#ref === undefined)
      this.#ref = await this.#api.findComment(
        this.#issueNumber,
        markerComment(this.#context.marker),
      );
    if (!this.#ref) return null;
    const current = await this.#api.getCommentBody(this.#ref.id);
    if (current === null) {
      this.#ref = null; // deleted meanwhile: the aggregate job writes a new one
      return null;
    }
    const body = withShardLine(current, this.#context, this.#shard, line);
    if (body.length > MAX_COMMENT_CHARS) {
      throw new RangeError(
        `[action] the progress of ${this.#shard.count} shards is over GitHub's ${MAX_COMMENT_CHARS} characters; use fewer shards`,
      );
    }
    this.#ref = await this.#api.updateComment(this.#ref.id, body);
    return this.#ref;
  }
}
