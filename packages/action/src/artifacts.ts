/**
 * The workflow artifact: `stage_result.json`, the full report, every run's result and
 * the logs of the runs this job ran, within fixed bounds (a log over the per-file bound
 * keeps its tail; past the total bound logs are left out, and README.txt says so).
 */
import { lstat, mkdir, open, writeFile } from "node:fs/promises";
import path from "node:path";
import { DefaultArtifactClient } from "@actions/artifact";
import { runFolderFiles, toDiskJson, type ExperimentResult, type StageResult } from "@tmgg/core";

export interface ArtifactLimits {
  /** A larger file keeps its last `maxFileBytes`. */
  maxFileBytes: number;
  /** Logs stop being added once the artifact holds this much. */
  maxTotalBytes: number;
  /** Most `runs/<run_id>.json` files (stage_result.json holds every run anyway). */
  maxRunFiles: number;
}

export const DEFAULT_ARTIFACT_LIMITS: ArtifactLimits = {
  maxFileBytes: 2 * 1024 * 1024,
  maxTotalBytes: 200 * 1024 * 1024,
  maxRunFiles: 10_000,
};

export interface StagedArtifact {
  root: string;
  files: string[];
  sizeBytes: number;
  stageResultPath: string;
  /** What was cut or left out, for the report and README.txt. */
  notes: string[];
}

const MiB = 1024 * 1024;

/** Copies `source` to `target`, keeping only the last `maxBytes` of a larger file; returns bytes written and whether it was cut. */
async function copyTail(
  source: string,
  target: string,
  maxBytes: number,
): Promise<{ bytes: number; isCut: boolean }> {
  const handle = await open(source, "r");
  try {
    const { size } = await handle.stat();
    const keep = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(keep);
    await handle.read(buffer, 0, keep, size - keep);
    const head =
      keep < size
        ? Buffer.from(
            `[tmgg-sweep] the first ${size - keep} of ${size} bytes were cut; the whole file is in the results storage\n`,
          )
        : null;
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, head ? Buffer.concat([head, buffer]) : buffer);
    return { bytes: keep + (head?.length ?? 0), isCut: keep < size };
  } finally {
    await handle.close();
  }
}

function logOrder(a: ExperimentResult, b: ExperimentResult): number {
  const weight = (e: ExperimentResult): number => (e.status === "completed" ? 1 : 0);
  return weight(a) - weight(b) || a.runId.localeCompare(b.runId);
}

/**
 * Writes the artifact's files under `root`. `localFolders` maps the runs this job ran
 * to their local run folders; failed runs' logs go first, so the bound drops the logs of
 * completed runs before any failure's.
 */
export async function stageArtifact(
  root: string,
  result: StageResult,
  fullReport: string,
  localFolders: ReadonlyMap<string, string>,
  limits: ArtifactLimits = DEFAULT_ARTIFACT_LIMITS,
): Promise<StagedArtifact> {
  await mkdir(root, { recursive: true });
  const files: string[] = [];
  const notes: string[] = [];
  let total = 0;
  const put = async (relative: string, text: string): Promise<void> => {
    const file = path.join(root, relative);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
    files.push(file);
    total += Buffer.byteLength(text);
  };

  const stageResultPath = path.join(root, "stage_result.json");
  await put("stage_result.json", toDiskJson(result));
  await put("report.md", fullReport);
  const runFiles = result.experiments.slice(0, limits.maxRunFiles);
  for (const experiment of runFiles)
    await put(`runs/${experiment.runId}.json`, toDiskJson(experiment));
  if (runFiles.length < result.experiments.length) {
    notes.push(
      `${result.experiments.length - runFiles.length} run results are only in stage_result.json (over ${limits.maxRunFiles} runs/ files)`,
    );
  }

  const ran = result.experiments.filter((e) => localFolders.has(e.runId)).sort(logOrder);
  let cutFiles = 0;
  let leftOutRuns = 0;
  for (const experiment of ran) {
    if (total >= limits.maxTotalBytes) {
      leftOutRuns++;
      continue;
    }
    const folder = localFolders.get(experiment.runId)!;
    try {
      if (!(await lstat(folder)).isDirectory()) continue;
    } catch {
      continue;
    }
    for await (const relative of runFolderFiles(folder)) {
      const room = Math.min(limits.maxFileBytes, limits.maxTotalBytes - total);
      if (room <= 0) break;
      const target = path.join(root, "logs", experiment.runId, relative);
      const { bytes, isCut } = await copyTail(path.join(folder, relative), target, room);
      files.push(target);
      total += bytes;
      if (isCut) cutFiles++;
    }
  }
  if (cutFiles > 0)
    notes.push(
      `${cutFiles} log files kept only their last ${Math.round(limits.maxFileBytes / MiB)} MiB`,
    );
  if (leftOutRuns > 0) {
    notes.push(
      `the logs of ${leftOutRuns} runs were left out (the artifact is bounded to ${Math.round(limits.maxTotalBytes / MiB)} MiB); they are in the results storage`,
    );
  }
  if (notes.length > 0) await put("README.txt", `${notes.map((note) => `- ${note}`).join("\n")}\n`);
  return { root, files, sizeBytes: total, stageResultPath, notes };
}

/** Why an upload was skipped, or what was uploaded. */
export type UploadOutcome =
  | { isUploaded: true; id: number | undefined; sizeBytes: number | undefined }
  | { isUploaded: false; reason: string };

/** Uploads the staged files as one workflow artifact; skipped (not failed) outside the Actions runtime. */
export async function uploadArtifact(name: string, staged: StagedArtifact): Promise<UploadOutcome> {
  if (!process.env.ACTIONS_RUNTIME_TOKEN || !process.env.ACTIONS_RESULTS_URL) {
    return {
      isUploaded: false,
      reason:
        "the Actions runtime (ACTIONS_RUNTIME_TOKEN, ACTIONS_RESULTS_URL) is not available to this step",
    };
  }
  const client = new DefaultArtifactClient();
  const response = await client.uploadArtifact(name, staged.files, staged.root);
  return { isUploaded: true, id: response.id, sizeBytes: response.size };
}
