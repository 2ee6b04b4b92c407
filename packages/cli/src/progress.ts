import type { CoordinatorEvent } from "@tmgg/core";

function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

/**
 * Shows a sweep's progress: a live bar on a terminal, one plain line per finished run
 * elsewhere (CI logs). Writes to the given stream (stderr), never to stdout.
 */
export class Progress {
  readonly #out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  readonly #isLive: boolean;
  #total = 0;
  #toRun = 0;
  #done = 0;
  #failed = 0;
  #running = 0;
  #startMs = Date.now();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    options: { isLive?: boolean } = {},
  ) {
    this.#out = out;
    this.#isLive = options.isLive ?? (Boolean(out.isTTY) && !process.env["CI"]);
  }

  #bar(): string {
    const width = 24;
    const ran = this.#done;
    const filled = this.#toRun === 0 ? width : Math.round((ran / this.#toRun) * width);
    const elapsed = (Date.now() - this.#startMs) / 1000;
    const eta = ran === 0 ? NaN : (elapsed / ran) * (this.#toRun - ran);
    return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${ran}/${this.#toRun} done · ${this.#failed} failed · ${this.#running} running · ${clock(elapsed)} elapsed · ETA ${clock(eta)}`;
  }

  #draw(): void {
    if (!this.#isLive) return;
    const line = this.#bar().slice(0, Math.max(20, (this.#out.columns ?? 100) - 1));
    this.#out.write(`\r\x1b[2K${line}`);
  }

  #line(text: string): void {
    if (this.#isLive) this.#out.write(`\r\x1b[2K${text}\n`);
    else this.#out.write(`${text}\n`);
    this.#draw();
  }

  onEvent = (event: CoordinatorEvent): void => {
    switch (event.type) {
      case "planned":
        this.#total = event.total;
        this.#toRun = event.toRun;
        this.#startMs = Date.now();
        this.#line(
          `stage ${event.stage}${event.shard ? ` (shard ${event.shard.index} of ${event.shard.count})` : ""}: ${event.total} runs planned, ${event.skipped} already completed (skipped), ${event.toRun} to run`,
        );
        if (this.#isLive) this.#timer = setInterval(() => this.#draw(), 1000).unref();
        break;
      case "started":
        this.#running++;
        this.#draw();
        break;
      case "finished": {
        this.#running = Math.max(0, this.#running - 1);
        this.#done++;
        const { result } = event;
        if (result.status !== "completed") this.#failed++;
        const metrics = Object.entries(result.metrics)
          .slice(0, 3)
          .map(([k, v]) => `${k}=${Number(v.toPrecision(4))}`)
          .join(" ");
        const reason =
          result.status === "completed" ? metrics : (result.errorMessage ?? "").split("\n")[0];
        this.#line(
          `[${this.#done}/${this.#toRun}] ${result.status.padEnd(9)} ${result.runId} (${result.durationSeconds.toFixed(1)} s) ${reason}`,
        );
        break;
      }
      case "claimed": {
        this.#toRun = Math.max(0, this.#toRun - 1);
        const by =
          event.reason === "finished"
            ? "another sweep finished it during this one"
            : `held by ${event.owner ?? "another sweep"}${event.expiresAt ? ` until ${event.expiresAt}` : ""}`;
        this.#line(`claimed   ${event.runId} by another sweep, not run here (${by})`);
        break;
      }
      case "skipped":
        this.#toRun = Math.max(0, this.#toRun - 1);
        this.#line(`skipped   ${event.runId} (another sweep completed it)`);
        break;
      case "retry": {
        this.#running = Math.max(0, this.#running - 1);
        const reason = (event.result.errorMessage ?? "").split("\n")[0];
        this.#line(
          `retry     ${event.runId} attempt ${event.attempt} of ${event.maxRetries + 1}: ${reason}`,
        );
        break;
      }
      case "budget":
        this.#line(event.message);
        break;
      case "warning":
        this.#line(`warning: ${event.message}`);
        break;
      case "progress":
        break;
    }
  };

  /** Clears the live bar. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#isLive) this.#out.write(`\r\x1b[2K`);
  }

  get total(): number {
    return this.#total;
  }
}
