import { describe, expect, it } from "vitest";
import { isSweepComment, parseSweepCommand } from "./command.ts";

function reasonOf(command: ReturnType<typeof parseSweepCommand>): string {
  return command?.kind === "invalid" ? command.reason : "";
}

describe("parseSweepCommand", () => {
  it("reads a stage, key=value overrides and the flags from the first line only", () => {
    expect(
      parseSweepCommand("/sweep stage1 seeds=1,2 learning_rate=1e-3 --dry-run\n--fresh"),
    ).toEqual({
      kind: "run",
      stage: "stage1",
      overrides: ["seeds=1,2", "learning_rate=1e-3"],
      isDryRun: true,
      isFresh: false,
    });
    expect(parseSweepCommand("  /sweep   s  --fresh  ")).toMatchObject({
      kind: "run",
      stage: "s",
      isFresh: true,
    });
  });

  it("knows help and list", () => {
    expect(parseSweepCommand("/sweep help")).toEqual({ kind: "help" });
    expect(parseSweepCommand("/sweep list\r\nthanks")).toEqual({ kind: "list" });
  });

  it("is null for anything that is not a /sweep command", () => {
    for (const body of ["", "lgtm", "/sweeps s", "please /sweep s", "\n/sweep s", "/Sweep s"]) {
      expect(parseSweepCommand(body)).toBeNull();
      expect(isSweepComment(body)).toBe(false);
    }
  });

  it("explains what is wrong with a malformed command", () => {
    expect(parseSweepCommand("/sweep")).toEqual({ kind: "invalid", reason: "it names no stage" });
    expect(reasonOf(parseSweepCommand("/sweep s --force"))).toContain("unknown flag --force");
    expect(reasonOf(parseSweepCommand("/sweep s other"))).toContain("unexpected word other");
    expect(parseSweepCommand("/sweep --dry-run s")).toMatchObject({ kind: "invalid" });
    expect(parseSweepCommand("/sweep list now")).toMatchObject({ kind: "invalid" });
    expect(reasonOf(parseSweepCommand(`/sweep s ${"x=1 ".repeat(600)}`))).toContain(
      "over 2000 characters",
    );
  });

  it("keeps a stage token as typed, so the caller can refuse paths and shell syntax", () => {
    expect(parseSweepCommand("/sweep ../../etc")).toMatchObject({
      kind: "run",
      stage: "../../etc",
    });
    expect(parseSweepCommand("/sweep $(reboot)")).toMatchObject({
      kind: "run",
      stage: "$(reboot)",
    });
  });
});
