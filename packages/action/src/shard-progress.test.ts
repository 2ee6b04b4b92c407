import { describe, expect, it } from "vitest";
import { shardLine, withShardLine, type ShardCommentContext } from "./shard-progress.ts";

const CONTEXT: ShardCommentContext = {
  marker: "tmgg-sweep:s",
  stage: "s",
  runKey: "4242",
  commitSha: "0123456789abcdef",
  runUrl: "https://github.com/octo/sweeps/actions/runs/4242",
};

function line(index: number, count: number, completed: number): string {
  return shardLine({
    shard: { index, count },
    state: "running",
    total: 4,
    completed,
    failed: 0,
    running: 1,
    skipped: 0,
    claimed: 0,
    notStarted: 0,
  });
}

function shardLines(body: string): string[] {
  return body.split("\n").filter((text) => text.startsWith("- **shard"));
}

describe("withShardLine", () => {
  it("replaces a body that is not this run's shard progress (the gate's note, a report) with its own line", () => {
    const body = withShardLine(
      "<!-- tmgg-sweep:s -->\n## ⏳ Sweep `s` is queued",
      CONTEXT,
      { index: 2, count: 3 },
      line(2, 3, 1),
    );
    expect(body.startsWith("<!-- tmgg-sweep:s -->\n## ⏳ Sweep `s`: running in 3 shards")).toBe(
      true,
    );
    expect(body).toContain("commit `0123456`");
    expect(shardLines(body)).toEqual([line(2, 3, 1)]);
  });

  it("keeps the other shards' lines in shard order and replaces its own", () => {
    let body = withShardLine(null, CONTEXT, { index: 3, count: 3 }, line(3, 3, 0));
    body = withShardLine(body, CONTEXT, { index: 1, count: 3 }, line(1, 3, 0));
    body = withShardLine(body, CONTEXT, { index: 3, count: 3 }, line(3, 3, 2));
    expect(shardLines(body)).toEqual([line(1, 3, 0), line(3, 3, 2)]);
  });

  it("drops the lines of an earlier workflow run or another shard count", () => {
    const earlier = withShardLine(
      null,
      { ...CONTEXT, runKey: "4000" },
      { index: 1, count: 3 },
      line(1, 3, 4),
    );
    expect(
      shardLines(withShardLine(earlier, CONTEXT, { index: 2, count: 3 }, line(2, 3, 0))),
    ).toEqual([line(2, 3, 0)]);
    const other = withShardLine(null, CONTEXT, { index: 1, count: 2 }, line(1, 2, 4));
    expect(
      shardLines(withShardLine(other, CONTEXT, { index: 2, count: 3 }, line(2, 3, 0))),
    ).toEqual([line(2, 3, 0)]);
  });
});

describe("shardLine", () => {
  it("says how far the shard is, and at the end what it left to others or the budget", () => {
    expect(line(2, 3, 1)).toBe(
      "- **shard 2 of 3** ⏳ running: 1 of 4 runs done · ✅ 1 completed · ❌ 0 failed · 🔄 1 running <!-- tmgg-shard:2/3 -->",
    );
    const finished = shardLine({
      shard: { index: 1, count: 2 },
      state: "finished",
      total: 6,
      completed: 2,
      failed: 1,
      running: 0,
      skipped: 1,
      claimed: 1,
      notStarted: 1,
    });
    expect(finished).toBe(
      "- **shard 1 of 2** ⚠️ finished: 4 of 6 runs done · ✅ 2 completed · ❌ 1 failed · ⏭️ 1 skipped · 🤝 1 claimed by another sweep · 💰 1 not started (budget) <!-- tmgg-shard:1/2 -->",
    );
  });
});
