/**
 * One comment per (pull request, stage), found again by a hidden marker and edited in
 * place: the plan, live progress (throttled), then the final report.
 */
import { httpStatus, type CommentRef, type GitHubApi } from "./github-api.ts";
import { markerComment } from "./messages.ts";
import { ThrottledWriter } from "./throttled-writer.ts";

/** GitHub refuses comment bodies over this many characters. */
export const MAX_COMMENT_CHARS = 65_536;

export class StickyComment {
  readonly #api: GitHubApi;
  readonly #issueNumber: number;
  readonly #markerLine: string;
  readonly #writer: ThrottledWriter<string, CommentRef>;
  #ref: CommentRef | null = null;
  #found = false;

  constructor(api: GitHubApi, issueNumber: number, marker: string, intervalMs: number) {
    this.#api = api;
    this.#issueNumber = issueNumber;
    this.#markerLine = markerComment(marker);
    this.#writer = new ThrottledWriter((body) => this.#put(body), intervalMs);
  }

  /** Told about write failures of throttled updates (they never stop a sweep). */
  get onError(): (error: unknown) => void {
    return this.#writer.onError;
  }

  set onError(handler: (error: unknown) => void) {
    this.#writer.onError = handler;
  }

  /** The comment, once written. */
  get ref(): CommentRef | null {
    return this.#ref;
  }

  /** Writes now, after any write in flight: creates the comment or edits it. Drops a queued update. */
  write(body: string): Promise<CommentRef> {
    return this.#writer.write(body);
  }

  /** Queues a progress update: written once the last write is `intervalMs` old; only the newest body is kept. */
  update(body: string): void {
    this.#writer.update(body);
  }

  /** Writes the final body; updates queued before it are dropped, later ones ignored. */
  finish(body: string): Promise<CommentRef> {
    this.#writer.close();
    return this.#writer.write(body);
  }

  /** Stops queued updates without writing them. */
  close(): void {
    this.#writer.close();
  }

  async #put(body: string): Promise<CommentRef> {
    if (!body.startsWith(this.#markerLine)) body = `${this.#markerLine}\n${body}`;
    if (body.length > MAX_COMMENT_CHARS) {
      throw new RangeError(
        `[action] a comment body of ${body.length} characters is over GitHub's ${MAX_COMMENT_CHARS}; render it with a smaller maxChars`,
      );
    }
    if (!this.#found) {
      this.#ref = await this.#api.findComment(this.#issueNumber, this.#markerLine);
      this.#found = true;
    }
    try {
      this.#ref = this.#ref
        ? await this.#api.updateComment(this.#ref.id, body)
        : await this.#api.createComment(this.#issueNumber, body);
    } catch (error) {
      // the sticky comment was deleted, or is not ours to edit: start a new one
      const code = httpStatus(error);
      if (!this.#ref || (code !== 404 && code !== 403)) throw error;
      this.#ref = await this.#api.createComment(this.#issueNumber, body);
    }
    return this.#ref;
  }
}
