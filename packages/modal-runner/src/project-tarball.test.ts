import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { list } from "tar";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ignoreMatcher, packProject } from "./project-tarball.ts";

async function entries(file: string): Promise<string[]> {
  const names: string[] = [];
  await list({ file, onReadEntry: (entry) => names.push(entry.path) });
  return names.sort();
}

function write(root: string, file: string, content = "x"): void {
  mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  writeFileSync(path.join(root, file), content);
}

describe("packProject", () => {
  let dir: string;
  let root: string;
  let out: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), "pack-project-"));
    root = path.join(dir, "project");
    out = path.join(dir, "project.tar.gz");
    mkdirSync(root);
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("packs the files git knows, honouring .gitignore and the ignore list", async () => {
    write(root, "train.py");
    write(root, "configs/base.yaml");
    write(root, "notes.txt");
    write(root, "secret.env");
    write(root, "outputs/run/metrics.json");
    write(root, "node_modules/pkg/index.js");
    write(root, "data/raw/big.bin");
    write(root, ".gitignore", "secret.env\n");
    const git = (...args: string[]): void => {
      execFileSync("git", args, { cwd: root, stdio: "ignore" });
    };
    git("init", "-q");
    git("add", "train.py", "configs/base.yaml", ".gitignore", "outputs/run/metrics.json");

    const packed = await packProject(root, out, { ignore: ["data/raw"] });

    expect(packed.listedBy).toBe("git");
    expect(await entries(out)).toEqual([
      ".gitignore",
      "configs/base.yaml",
      "notes.txt",
      "train.py",
    ]);
  });

  it("walks the folder when it is not a git work tree", async () => {
    write(root, "train.py");
    write(root, "pkg/model.py");
    write(root, "pkg/__pycache__/model.cpython-312.pyc");
    write(root, ".git/HEAD");
    const packed = await packProject(root, out, { ignore: ["*.ckpt"] });
    expect(packed.listedBy).toBe("walk");
    expect(await entries(out)).toEqual(["pkg/model.py", "train.py"]);
  });

  it("refuses a project over the size limit, naming the largest files", async () => {
    write(root, "small.txt", "a");
    write(root, "weights.bin", "w".repeat(4096));
    await expect(packProject(root, out, { maxBytes: 1024 })).rejects.toThrow(
      /over the limit of 0\.0 MiB \(option maxUploadBytes\); largest files: weights\.bin/,
    );
  });

  it("refuses a project root that is not a folder", async () => {
    await expect(packProject(path.join(dir, "missing"), out)).rejects.toThrow(/is not a folder/);
  });
});

describe("ignoreMatcher", () => {
  it("matches names at any depth and paths from the root", () => {
    const ignored = ignoreMatcher(["node_modules", "*.ckpt", "data/raw", "logs/**"]);
    expect(ignored("a/node_modules/x.js")).toBe(true);
    expect(ignored("models/best.ckpt")).toBe(true);
    expect(ignored("data/raw/file.csv")).toBe(true);
    expect(ignored("data/processed/file.csv")).toBe(false);
    expect(ignored("logs/a/b.txt")).toBe(true);
    expect(ignored("src/train.py")).toBe(false);
  });
});
