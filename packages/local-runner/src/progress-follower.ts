import { open } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";
import { setTimeout as sleep } from "node:timers/promises";
import { parseProgressLine, type ProgressPoint } from "@tmgg/core";

/** Longest progress line kept; longer ones are skipped whole. */
const MAX_LINE_BYTES = 1024 * 1024;
const READ_CHUNK_BYTES = 64 * 1024;

/**
 * Follows a `metrics.jsonl` file as an experiment appends to it, polling from where it
 * left off and holding back a partial last line until its newline arrives.
 */
export class ProgressFollower {
  readonly #file: string;
  readonly #onPoint: (point: ProgressPoint) => void;
  readonly #intervalMs: number;
  readonly #decoder = new StringDecoder("utf8");
  readonly #stopped = new AbortController();
  #offset = 0;
  #partial = "";
  #skipping = false;
  #loop: Promise<void> | undefined;

  constructor(file: string, onPoint: (point: ProgressPoint) => void, intervalMs = 200) {
    this.#file = file;
    this.#onPoint = onPoint;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops polling after one last read; a final line without its newline still counts. */
  async stop(): Promise<void> {
    this.#stopped.abort();
    await this.#loop;
    await this.#poll();
    const rest = this.#partial + this.#decoder.end();
    this.#partial = "";
    if (!this.#skipping && rest.trim() !== "") this.#emit(rest);
  }

  async #run(): Promise<void> {
    while (!this.#stopped.signal.aborted) {
      await this.#poll();
      await sleep(this.#intervalMs, undefined, { signal: this.#stopped.signal }).catch(
        () => undefined,
      );
    }
  }

  async #poll(): Promise<void> {
    let handle;
    try {
      handle = await open(this.#file, "r");
    } catch {
      return; // not written yet
    }
    try {
      const buffer = Buffer.alloc(READ_CHUNK_BYTES);
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.#offset);
        if (bytesRead === 0) break;
        this.#offset += bytesRead;
        this.#take(this.#decoder.write(buffer.subarray(0, bytesRead)));
      }
    } finally {
      await handle.close();
    }
  }

  #take(text: string): void {
    const lines = (this.#partial + text).split("\n");
    this.#partial = lines.pop()!;
    for (const line of lines) {
      if (this.#skipping) {
        this.#skipping = false;
        continue;
      }
      this.#emit(line);
    }
    if (this.#partial.length > MAX_LINE_BYTES) {
      this.#partial = "";
      this.#skipping = true;
    }
  }

  #emit(line: string): void {
    const point = parseProgressLine(line);
    if (point === undefined) return;
    try {
      this.#onPoint(point);
    } catch {
      // A broken progress display must not end the run.
    }
  }
}
