/** The stages of the checked-out repository: `<stages-dir>/<name>.yaml`. */
import { lstat, readdir } from "node:fs/promises";
import path from "node:path";
import { IDENTIFIER_PATTERN, gridSize, loadStageConfig } from "@tmgg/core";
import type { StageListing } from "./messages.ts";

const STAGE_FILE = /^([A-Za-z0-9_-]+)\.yaml$/;

/** Stage names with a file in `dir`, sorted. */
export async function stageNames(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => STAGE_FILE.exec(entry.name)?.[1])
    .filter((name): name is string => name !== undefined)
    .sort();
}

/** The stage file for a name typed in a comment, or null unless the name is safe and the file exists as a regular file. */
export async function stageFile(dir: string, name: string): Promise<string | null> {
  if (!IDENTIFIER_PATTERN.test(name)) return null;
  const file = path.join(dir, `${name}.yaml`);
  try {
    return (await lstat(file)).isFile() ? file : null;
  } catch {
    return null;
  }
}

/** Every stage with its size and GPU, or the reason it cannot load. */
export async function listStages(dir: string): Promise<StageListing[]> {
  const names = await stageNames(dir);
  return Promise.all(
    names.map(async (name): Promise<StageListing> => {
      try {
        const stage = await loadStageConfig(path.join(dir, `${name}.yaml`));
        const runs =
          stage.numTrials === undefined
            ? gridSize(stage)
            : stage.architectures.length *
              stage.datasets.length *
              stage.numTrials *
              stage.seeds.length;
        return {
          name,
          runs,
          gpuType: stage.gpuType,
          ...(stage.description ? { description: stage.description } : {}),
        };
      } catch (error) {
        return { name, error: (error as Error).message };
      }
    }),
  );
}
