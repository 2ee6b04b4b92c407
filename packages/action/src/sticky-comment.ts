/**
 * One comment per (pull request, stage), found again by a hidden marker and edited in
 * place: the plan, live progress (throttled), then the final report.
 */
import { httpStatus, type CommentRef, type GitHubApi } from "./github-api.ts";
import { markerComment } from "./messages.ts";

/** GitHub refuses comment bodies over this many characters. */
export const MAX_COMMENT_CHARS = 65_536;

export class StickyComment {
  readonly #api: GitHubApi;
  readonly #issueNumber: number;
  readonly #markerLine: string;
  readonly #intervalMs: number;
  #ref: CommentRef | null = null;
  #found = false;
  /** The newest progress body not yet written. */
  #pending: string | null = null;
  /** Writes happen one after another, so two can never both create the comment. */
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #lastWriteAt = 0;
  #closed = false;
  /** Told about write failures of throttled updates (they never stop a sweep). */
  onError: (error: unknown) => void = () => undefined;

  constructor(api: GitHubApi, issueNumber: number, marker: string, intervalMs: number) {
    this.#api = api;
    this.#issueNumber = issueNumber;
    this.#markerLine = markerComment(marker);
    this.#intervalMs = intervalMs;
  }

  /** The comment, once written. */
  get ref(): CommentRef | null {
    return this.#ref;
  }

  /** Writes now, after any write in flight: creates the comment or edits it. Drops a queued update. */
  write(body: string): Promise<CommentRef> {
    this.#cancelTimer();
    this.#pending = null;
    return this.#enqueue(body);
  }

  /** Queues a progress update: written once the last write is `intervalMs` old; only the newest body is kept. */
  update(body: string): void {
    if (this.#closed) return;
    this.#pending = body;
    if (this.#timer) return;
    const wait = Math.max(0, this.#lastWriteAt + this.#intervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const next = this.#pending;
      this.#pending = null;
      if (next !== null && !this.#closed) this.#enqueue(next).catch(this.onError);
    }, wait);
  }

  /** Writes the final body; updates queued before it are dropped, later ones ignored. */
  finish(body: string): Promise<CommentRef> {
    this.#closed = true;
    return this.write(body);
  }

  /** Stops queued updates without writing them. */
  close(): void {
    this.#closed = true;
    this.#cancelTimer();
    this.#pending = null;
  }

  #enqueue(body: string): Promise<CommentRef> {
    this.#lastWriteAt = Date.now(); // the throttle counts from the newest write, sent or queued
    const written = this.#queue.then(() => this.#put(body));
    this.#queue = written.catch(() => undefined);
    return written;
  }

  #cancelTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
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
    this.#lastWriteAt = Date.now();
    return this.#ref;
  }
}
