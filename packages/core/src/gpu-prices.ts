/**
 * Modal's public list prices per GPU-hour, for cost *estimates* only. Modal bills GPU time
 * per second while a container runs; the real bill also has CPU, memory, plan discounts
 * and credits, so every figure derived from this table is labelled an estimate. Pass your
 * own prices (`overrides`) when yours differ.
 */

import { GPU_TIERS } from "./gpu-types.ts";

/** When the table was last checked against Modal's pricing page. */
export const GPU_PRICES_AS_OF = "2026-05";

/**
 * USD per GPU-hour on Modal, as published in 2025–2026 (T4, L4, L40S, A100-80GB and H100
 * confirmed by a third-party check in May 2026; the others approximate).
 */
export const MODAL_GPU_PRICES_USD_PER_HOUR: Readonly<Record<string, number>> = Object.freeze({
  T4: 0.5904,
  L4: 0.7992,
  A10G: 1.1,
  L40S: 1.9512,
  "A100-40GB": 2.1,
  "A100-80GB": 2.4984,
  H100: 3.9492,
  H200: 4.54,
  B200: 6.25,
});

/** Other spellings of a priced GPU, and the original module's tiers (`standard` → A10G…). */
const ALIASES: Readonly<Record<string, string>> = {
  A10: "A10G",
  A100: "A100-40GB",
  "H100!": "H100",
  "B200+": "B200",
  ...Object.fromEntries(
    Object.entries(GPU_TIERS).map(([tier, gpu]) => [
      tier.toUpperCase(),
      gpu.replace(/^A100(?=:|$)/, "A100-40GB"),
    ]),
  ),
};

function lookup(name: string, overrides: Readonly<Record<string, number>>): number | undefined {
  for (const [key, price] of Object.entries(overrides)) {
    if (key.toUpperCase() === name) return price;
  }
  return MODAL_GPU_PRICES_USD_PER_HOUR[name];
}

/**
 * Estimated GPU cost in USD of `seconds` on `gpuType` (`A10G`, `H100:2`, a tier such as
 * `standard`, or `cpu`, which has no GPU cost unless `overrides` prices `cpu`). `overrides` maps GPU names (or tiers) to
 * your own USD per GPU-hour and wins over the table. Unknown types give null.
 *
 * @example
 * estimateCostUsd("H100:2", 1800) // ≈ 3.95 (2 GPUs × half an hour × 3.9492)
 * estimateCostUsd("A10G", 3600, { A10G: 0.9 }) // 0.9
 */
export function estimateCostUsd(
  gpuType: string,
  seconds: number,
  overrides: Readonly<Record<string, number>> = {},
): number | null {
  if (!Number.isFinite(seconds) || seconds < 0) return null;
  const [rawType = "", rawCount, ...rest] = gpuType.trim().split(":");
  if (rest.length > 0) return null;
  let count = rawCount === undefined ? 1 : Number(rawCount);
  if (!Number.isInteger(count) || count < 1) return null;
  let name = rawType.toUpperCase();
  if (name === "CPU") return ((lookup(name, overrides) ?? 0) * seconds) / 3600;
  let price = lookup(name, overrides);
  if (price === undefined) {
    const alias = ALIASES[name];
    if (alias === undefined) return null;
    const [aliasName = "", aliasCount] = alias.split(":");
    name = aliasName;
    count *= aliasCount === undefined ? 1 : Number(aliasCount);
    price = lookup(name, overrides);
  }
  return price === undefined ? null : (price * count * seconds) / 3600;
}

/** The fields of a run that its cost depends on. */
export interface CostedRun {
  backend: string;
  gpuType: string;
  durationSeconds: number;
}

/**
 * Estimated GPU cost in USD of the runs that ran on Modal (`backend: "modal"`); runs on
 * your own machines cost nothing here. Null when no run could be priced.
 */
export function estimateRunsCostUsd(
  runs: readonly CostedRun[],
  overrides: Readonly<Record<string, number>> = {},
): number | null {
  let total = 0;
  let priced = 0;
  for (const run of runs) {
    if (run.backend !== "modal") continue;
    const cost = estimateCostUsd(run.gpuType, run.durationSeconds, overrides);
    if (cost === null) continue;
    total += cost;
    priced += 1;
  }
  return priced === 0 ? null : total;
}
