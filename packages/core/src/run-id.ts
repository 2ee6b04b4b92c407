import { createHash } from "node:crypto";

/** JSON with object keys sorted at every level, so equal configs serialize equally. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) return "null";
    return JSON.stringify(value) ?? "null";
  }
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i ? "," : "") + canonicalJson(value[i]);
    return `${out}]`;
  }
  return `{${canonicalEntries(value as Record<string, unknown>).join(",")}}`;
}

/** `"key":value` strings of an object's defined keys, sorted by key. */
function canonicalEntries(value: Record<string, unknown>): string[] {
  const keys = Object.keys(value).sort();
  const parts: string[] = [];
  for (const key of keys) {
    const inner = value[key];
    if (inner !== undefined) parts.push(`${JSON.stringify(key)}:${canonicalJson(inner)}`);
  }
  return parts;
}

/** Short hex hash of the canonical JSON of a value. */
export function configHash(value: unknown, length = 10): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, length);
}

const MAX_SLUG_LENGTH = 80;

function slugPart(value: unknown): string {
  const text = typeof value === "string" ? value : canonicalJson(value);
  return text.replace(/[^A-Za-z0-9_.=-]+/g, "-").replace(/^[-.]+|-+$/g, "");
}

/** The readable part of a run id: last path segments and `key=value` pairs. */
export function runSlug(parts: {
  architecture: string;
  dataset: string;
  params: Record<string, unknown>;
}): string {
  const pieces = [
    slugPart(parts.architecture.split("/").at(-1)),
    slugPart(parts.dataset.split("/").at(-1)),
    ...Object.entries(parts.params).map(([key, value]) =>
      slugPart(`${key.split(".").at(-1)}=${slugPart(value)}`),
    ),
  ];
  const slug = pieces
    .filter(Boolean)
    .join("_")
    .replace(/^[^A-Za-z0-9]+/, "");
  return slug.length > MAX_SLUG_LENGTH
    ? slug.slice(0, MAX_SLUG_LENGTH).replace(/[-_.=]+$/, "")
    : slug;
}

/**
 * A deterministic run id: a readable slug plus a hash of the resolved config's canonical
 * JSON. The same config always gets the same id, whatever the order of its keys.
 *
 * @example runId({ architecture: "models/gnn", dataset: "data/sbm", params: { lr: 0.001 }, seed: 1 }, config)
 * // "gnn_sbm_lr=0.001_seed=1-3fa9c2d1e0"
 */
export function runId(
  parts: { architecture: string; dataset: string; params: Record<string, unknown>; seed: number },
  config: Record<string, unknown>,
): string {
  return runIdentity(parts, config).runId;
}

/**
 * Both ids of a run at once, serializing the config a single time (the planner's hot path).
 */
export function runIdentity(
  parts: { architecture: string; dataset: string; params: Record<string, unknown>; seed: number },
  config: Record<string, unknown>,
): { runId: string; groupId: string } {
  const keys = Object.keys(config).sort();
  let full = "";
  let withoutSeed = "";
  for (const key of keys) {
    const inner = config[key];
    if (inner === undefined) continue;
    const entry = `${JSON.stringify(key)}:${canonicalJson(inner)}`;
    full += (full ? "," : "") + entry;
    if (key !== "seed") withoutSeed += (withoutSeed ? "," : "") + entry;
  }
  const hash = (text: string): string =>
    createHash("sha256").update(`{${text}}`).digest("hex").slice(0, 10);
  const groupSlug = runSlug({
    architecture: parts.architecture,
    dataset: parts.dataset,
    params: parts.params,
  });
  return {
    runId:
      `${groupSlug}${groupSlug ? "_" : ""}seed=${parts.seed}`
        .slice(0, MAX_SLUG_LENGTH)
        .replace(/[-_.=]+$/, "") + `-${hash(full)}`,
    groupId: `${groupSlug}-${hash(withoutSeed)}`,
  };
}

/** Id of a run's group: the same config without its seed. */
export function groupId(
  parts: { architecture: string; dataset: string; params: Record<string, unknown> },
  config: Record<string, unknown>,
): string {
  const { seed: _seed, ...withoutSeed } = config;
  return `${runSlug({ architecture: parts.architecture, dataset: parts.dataset, params: parts.params })}-${configHash(withoutSeed)}`;
}
