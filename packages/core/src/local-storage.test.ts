import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdtemp, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LocalStorage } from "./local-storage.ts";

const MODULE = fileURLToPath(new URL("./local-storage.ts", import.meta.url));

let dir: string;
let root: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tmgg-local-storage-"));
  root = path.join(dir, "root");
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every file name under `folder`, recursively, as `/`-joined relative paths. */
async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(folder, path.join(e.parentPath, e.name)).split(path.sep).join("/"))
    .sort();
}

/** A node child that imports LocalStorage from source and runs `body` once "go" arrives on stdin. */
function spawnChild(
  body: string,
  args: string[],
): { child: ChildProcess; output: Promise<string> } {
  const code = `
    import { pathToFileURL } from "node:url";
    const { LocalStorage } = await import(pathToFileURL(process.argv[1]).href);
    const args = process.argv.slice(2);
    await new Promise((resolve) => process.stdin.once("data", resolve));
    process.stdin.pause();
    ${body}
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", code, MODULE, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const output = new Promise<string>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (exitCode, signal) => {
      if (exitCode === 0) resolve(stdout);
      else reject(new Error(`child exited ${exitCode ?? signal}: ${stderr}`));
    });
  });
  return { child, output };
}

describe("LocalStorage", () => {
  it("reads a root folder that does not exist yet as empty, without creating it", async () => {
    const storage = new LocalStorage(root);
    expect(await storage.get("a.json")).toBeUndefined();
    expect(await storage.list("")).toEqual([]);
    await storage.delete("a.json");
    await expect(stat(root)).rejects.toThrow(/ENOENT/);
    await storage.put("a.json", "{}");
    expect(await storage.list("")).toEqual(["a.json"]);
  });

  it("makes a folder again when it was removed after this storage wrote there", async () => {
    const storage = new LocalStorage(root);
    await storage.put("stages/s/runs/a.json", "1");
    await storage.putIfAbsent("stages/s/leases/a/1.json", "1");
    await rm(path.join(root, "stages"), { recursive: true });
    await storage.put("stages/s/runs/b.json", "2");
    expect(await storage.putIfAbsent("stages/s/leases/a/1.json", "2")).toBe(true);
    await storage.uploadFile("stages/s/runs/c.log", path.join(root, "stages/s/runs/b.json"));
    expect(await filesUnder(root)).toEqual([
      "stages/s/leases/a/1.json",
      "stages/s/runs/b.json",
      "stages/s/runs/c.log",
    ]);
  });

  it("reports the absolute path of its root as its uri", () => {
    const relative = path.relative(process.cwd(), root);
    expect(new LocalStorage(relative).uri).toBe(root);
  });

  it("lets exactly one of 8 processes racing putIfAbsent win each key, and keeps the winner's value", async () => {
    const keys = 40;
    const writers = Array.from({ length: 8 }, (_, id) =>
      spawnChild(
        `
        const storage = new LocalStorage(args[0]);
        const won = [];
        for (let i = 0; i < Number(args[2]); i++) {
          if (await storage.putIfAbsent("race/" + i + ".json", args[1])) won.push(i);
        }
        process.stdout.write(JSON.stringify(won));
        `,
        [root, `writer-${id}`, String(keys)],
      ),
    );
    // Give every child time to load the module, then start them together.
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const { child } of writers) child.stdin?.end("go\n");
    const wins = (await Promise.all(writers.map((w) => w.output))).map(
      (out) => JSON.parse(out) as number[],
    );

    const storage = new LocalStorage(root);
    for (let i = 0; i < keys; i++) {
      const winners = wins.flatMap((won, id) => (won.includes(i) ? [id] : []));
      expect(winners, `key race/${i}.json`).toHaveLength(1);
      const stored = await storage.get(`race/${i}.json`);
      expect(Buffer.from(stored ?? []).toString()).toBe(`writer-${winners[0]}`);
    }
    expect(await filesUnder(root)).toHaveLength(keys);
  }, 60_000);

  it("leaves no temp files behind after writes, lost putIfAbsent races, uploads and failed writes", async () => {
    const storage = new LocalStorage(root);
    const source = path.join(dir, "source.bin");
    await writeFile(source, "uploaded");
    await storage.put("a/one.json", "1");
    await storage.put("a/one.json", "2");
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => storage.putIfAbsent("a/two.json", String(i))),
    );
    await storage.uploadFile("a/three.bin", source);
    await storage.put("file", "x");
    await expect(storage.put("file/below", "y")).rejects.toThrow(/existing key/);
    await expect(storage.put("a", "folder in the way")).rejects.toThrow(/folder of that name/);
    await expect(storage.uploadFile("a/four.bin", path.join(dir, "missing.bin"))).rejects.toThrow(
      /missing\.bin/,
    );
    expect(await filesUnder(root)).toEqual(["a/one.json", "a/three.bin", "a/two.json", "file"]);
  });

  it("keeps the old value when the writing process is killed in the middle of a write", async () => {
    const storage = new LocalStorage(root);
    await storage.put("big.bin", "old value");
    const fifo = path.join(dir, "slow-source");
    execFileSync("mkfifo", [fifo]);
    const { child, output } = spawnChild(
      `await new LocalStorage(args[0]).uploadFile("big.bin", args[1]);`,
      [root, fifo],
    );
    child.stdin?.end("go\n");
    const feed = createWriteStream(fifo);
    feed.on("error", () => {}); // EPIPE once the reader is killed
    feed.write(Buffer.alloc(1024 * 1024, 1));

    // Wait until the child's temp file holds part of the new value, then kill it.
    let temp: string | undefined;
    for (let i = 0; i < 200 && temp === undefined; i++) {
      for (const name of await readdir(root)) {
        if (name.startsWith(".tmgg-tmp-") && (await stat(path.join(root, name))).size > 0)
          temp = name;
      }
      if (temp === undefined) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(temp, "the child started writing its temp file").toBeDefined();
    child.kill("SIGKILL");
    await expect(output).rejects.toThrow(/SIGKILL/);
    feed.destroy();

    expect(Buffer.from((await storage.get("big.bin")) ?? []).toString()).toBe("old value");
    expect(await storage.list("")).toEqual(["big.bin"]);
    // The half-written temp file is still there, and invisible.
    expect((await readdir(root)).some((name) => name.startsWith(".tmgg-tmp-"))).toBe(true);
  }, 30_000);

  it("never lets a reader see a partly written value while another write replaces it", async () => {
    const storage = new LocalStorage(root);
    const sizeBytes = 4 * 1024 * 1024;
    const values = [Buffer.alloc(sizeBytes, "a"), Buffer.alloc(sizeBytes, "b")];
    await storage.put("value.bin", values[0]!);
    let writing = true;
    const writer = (async () => {
      for (let i = 1; i <= 30; i++) await storage.put("value.bin", values[i % 2]!);
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const seen = Buffer.from((await storage.get("value.bin")) ?? []);
      expect(seen.length).toBe(sizeBytes);
      expect(seen.equals(values[0]!) || seen.equals(values[1]!)).toBe(true);
      reads++;
    }
    await writer;
    expect(reads).toBeGreaterThan(0);
  }, 30_000);

  it("refuses to write, read or delete through a symbolic link that leads outside its folder", async () => {
    const outside = path.join(dir, "outside");
    await mkdir(outside);
    await writeFile(path.join(outside, "secret.txt"), "keep");
    await mkdir(root);
    await symlink(outside, path.join(root, "escape"));
    const storage = new LocalStorage(root);

    await expect(storage.put("escape/new.txt", "x")).rejects.toThrow(
      /symbolic link.*outside the storage folder/,
    );
    await expect(storage.putIfAbsent("escape/new.txt", "x")).rejects.toThrow(/symbolic link/);
    await expect(storage.put("escape/deeper/new.txt", "x")).rejects.toThrow(/symbolic link/);
    await expect(storage.get("escape/secret.txt")).rejects.toThrow(/symbolic link/);
    await expect(storage.delete("escape/secret.txt")).rejects.toThrow(/symbolic link/);
    expect(await readdir(outside)).toEqual(["secret.txt"]);
    expect(await readFile(path.join(outside, "secret.txt"), "utf8")).toBe("keep");
    expect(await storage.list("")).toEqual([]);
  });

  it("does not follow a key that is itself a symbolic link", async () => {
    await mkdir(root);
    await writeFile(path.join(dir, "target.txt"), "outside");
    await symlink(path.join(dir, "target.txt"), path.join(root, "link.txt"));
    const storage = new LocalStorage(root);
    await expect(storage.get("link.txt")).rejects.toThrow(
      /\[local-storage\] cannot read key "link.txt".*symbolic link/,
    );
  });

  it("works when its root folder is reached through a symbolic link", async () => {
    await mkdir(root);
    const alias = path.join(dir, "alias");
    await symlink(root, alias);
    const storage = new LocalStorage(alias);
    await storage.put("a/b.json", "{}");
    expect(await storage.list("a/")).toEqual(["a/b.json"]);
    expect(await readFile(path.join(root, "a", "b.json"), "utf8")).toBe("{}");
  });

  it("hides stray temp files from list and refuses keys that look like them", async () => {
    const storage = new LocalStorage(root);
    await storage.put("runs/a.json", "{}");
    await writeFile(path.join(root, "runs", ".tmgg-tmp-0123456789abcdef01234567"), "partial");
    expect(await storage.list("runs/")).toEqual(["runs/a.json"]);
    await expect(storage.put("runs/.tmgg-tmp-x", "x")).rejects.toThrow(/reserved for temp files/);
  });

  it("names the key and the folder in its errors", async () => {
    const storage = new LocalStorage(root);
    await storage.put("taken", "x");
    const error = await storage.put("taken/below.json", "y").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(
      `[local-storage] cannot write key "taken/below.json" in ${root}: a part of its path is an existing key (a file), not a folder`,
    );
    await expect(storage.list("/abs")).rejects.toThrow(/\[local-storage\] invalid prefix "\/abs"/);
  });
});
