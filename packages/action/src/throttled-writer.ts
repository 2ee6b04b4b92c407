/**
 * Writes one after another, with throttled updates: `write` goes now (after any write in
 * flight); `update` keeps only the newest value and writes it once the last write is
 * `intervalMs` old. The sticky comment and a shard's progress line both write this way.
 */
export class ThrottledWriter<T, R> {
  readonly #put: (value: T) => Promise<R>;
  readonly #intervalMs: number;
  /** The newest update not yet written. */
  #pending: { value: T } | null = null;
  /** Writes happen one after another, so two can never race (e.g. both create a comment). */
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;
  #lastWriteAt = 0;
  #closed = false;
  /** Told about failed throttled updates (they never stop a sweep). */
  onError: (error: unknown) => void = () => undefined;

  constructor(put: (value: T) => Promise<R>, intervalMs: number) {
    this.#put = put;
    this.#intervalMs = intervalMs;
  }

  /** Writes now, after any write in flight; drops a queued update. */
  write(value: T): Promise<R> {
    this.#cancelTimer();
    this.#pending = null;
    this.#lastWriteAt = Date.now(); // the throttle counts from the newest write, sent or queued
    const written = this.#queue.then(() => this.#put(value));
    this.#queue = written.then(
      () => (this.#lastWriteAt = Date.now()),
      () => undefined,
    );
    return written;
  }

  /** Queues an update: written once the last write is `intervalMs` old; only the newest is kept. */
  update(value: T): void {
    if (this.#closed) return;
    this.#pending = { value };
    if (this.#timer) return;
    const wait = Math.max(0, this.#lastWriteAt + this.#intervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const next = this.#pending;
      this.#pending = null;
      if (next !== null && !this.#closed) this.write(next.value).catch(this.onError);
    }, wait);
  }

  /** Stops queued and later updates without writing them; `write` still works. */
  close(): void {
    this.#closed = true;
    this.#cancelTimer();
    this.#pending = null;
  }

  #cancelTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
