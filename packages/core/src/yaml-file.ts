import { readFile } from "node:fs/promises";
import { LineCounter, isMap, isNode, isPair, isScalar, parseDocument, type Document } from "yaml";
import { ConfigError } from "./config-error.ts";

/** A parsed YAML file that can point at the line of a key path. */
export interface YamlFile {
  file: string;
  value: unknown;
  /** 1-based line and column of the node at `path` (or of its key), when it exists. */
  position(
    path: readonly (string | number)[],
    atKey?: boolean,
  ): { line: number; column: number } | undefined;
}

/** Parses YAML text; syntax errors become a ConfigError with file, line and column. */
export function parseYaml(text: string, file: string): YamlFile {
  const lineCounter = new LineCounter();
  const doc: Document.Parsed = parseDocument(text, {
    lineCounter,
    uniqueKeys: true,
    prettyErrors: true,
  });
  const error = doc.errors[0];
  if (error) {
    const pos = error.linePos?.[0];
    const message = (error.message.split("\n")[0] ?? error.message).replace(
      / at line \d+, column \d+:?$/,
      "",
    );
    throw new ConfigError(`invalid YAML: ${message}`, {
      file,
      ...(pos ? { line: pos.line, column: pos.col } : {}),
    });
  }
  return {
    file,
    value: doc.toJS({ maxAliasCount: 1000 }) as unknown,
    position(path, atKey = false) {
      let node: unknown = doc.contents;
      let keyNode: unknown;
      for (const segment of path) {
        if (!isNode(node)) return undefined;
        if (isMap(node)) {
          const pair = node.items.find(
            (item) =>
              isPair(item) && isScalar(item.key) && String(item.key.value) === String(segment),
          );
          if (!pair) return undefined;
          keyNode = pair.key;
          node = pair.value;
        } else if ("items" in node && Array.isArray(node.items) && typeof segment === "number") {
          keyNode = node.items[segment];
          node = node.items[segment];
        } else {
          return undefined;
        }
      }
      const target = atKey && keyNode !== undefined ? keyNode : (node ?? keyNode);
      if (!isNode(target) || !target.range) return undefined;
      const pos = lineCounter.linePos(target.range[0]);
      return { line: pos.line, column: pos.col };
    },
  };
}

/** Reads a text file; a missing or unreadable file is a ConfigError naming it. */
export async function readTextFile(file: string, what = "file"): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ConfigError(`${what} not found`, { file }, { cause: error });
    if (code === "EISDIR")
      throw new ConfigError(`${what} is a directory, not a YAML file`, { file }, { cause: error });
    throw new ConfigError(
      `cannot read ${what}: ${(error as Error).message}`,
      { file },
      { cause: error },
    );
  }
}

/** Reads and parses a YAML file. */
export async function readYamlFile(file: string, what = "file"): Promise<YamlFile> {
  return parseYaml(await readTextFile(file, what), file);
}
