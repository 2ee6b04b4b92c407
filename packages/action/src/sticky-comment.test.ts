import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { FakeGitHub } from "./fake-github.test-support.ts";
import { GitHubApi } from "./github-api.ts";
import { StickyComment } from "./sticky-comment.ts";

function api(github: FakeGitHub): GitHubApi {
  return new GitHubApi("token", github.owner, github.repo, github.url);
}

describe("StickyComment", () => {
  it("creates one comment, then edits it; a burst of updates becomes at most one write per interval", async () => {
    await using github = await FakeGitHub.start();
    const sticky = new StickyComment(api(github), 7, "tmgg-sweep:s", 300);
    await sticky.write("plan");
    for (let i = 1; i <= 20; i++) sticky.update(`progress ${i}`);
    await sleep(450);
    const report = await sticky.finish("final");
    sticky.update("too late");
    await sleep(50);
    const [comment] = github.commentsOn(7);
    expect(github.commentsOn(7)).toHaveLength(1);
    expect(comment!.history).toEqual([
      "<!-- tmgg-sweep:s -->\nplan",
      "<!-- tmgg-sweep:s -->\nprogress 20",
      "<!-- tmgg-sweep:s -->\nfinal",
    ]);
    expect(report.id).toBe(comment!.id);
  });

  it("finds its earlier comment by the marker, preferring the bot's over a user's copy", async () => {
    await using github = await FakeGitHub.start();
    for (let i = 0; i < 150; i++) github.seedComment(7, `chatter ${i}`);
    const ours = github.seedComment(7, "<!-- tmgg-sweep:s -->\nold report", {
      login: "github-actions[bot]",
      type: "Bot",
    });
    github.seedComment(7, "<!-- tmgg-sweep:s -->\nquoted by a user");
    github.seedComment(7, "<!-- tmgg-sweep:other -->\nanother stage", {
      login: "github-actions[bot]",
      type: "Bot",
    });
    const sticky = new StickyComment(api(github), 7, "tmgg-sweep:s", 0);
    await sticky.finish("new report");
    expect(ours.body).toBe("<!-- tmgg-sweep:s -->\nnew report");
    expect(github.commentsOn(7)).toHaveLength(153);
  });

  it("starts a new comment when the old one was deleted", async () => {
    await using github = await FakeGitHub.start();
    const sticky = new StickyComment(api(github), 7, "tmgg-sweep:s", 0);
    const first = await sticky.write("one");
    github.comments.delete(first.id);
    const second = await sticky.write("two");
    expect(second.id).not.toBe(first.id);
    expect(github.commentsOn(7).map((c) => c.body)).toEqual(["<!-- tmgg-sweep:s -->\ntwo"]);
  });

  it("refuses a body over GitHub's 65,536 characters before sending it", async () => {
    await using github = await FakeGitHub.start();
    const sticky = new StickyComment(api(github), 7, "tmgg-sweep:s", 0);
    await expect(sticky.write("x".repeat(70_000))).rejects.toThrow(
      /70022 characters is over GitHub.s 65536/,
    );
    expect(github.requests).toEqual([]);
  });
});
