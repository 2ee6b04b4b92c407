import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

/** A 2 x 1 x (2 x 2) x 3 = 24-run grid over the configs of {@link makeConfigProject}. */
export const GRID24_STAGE = `name: grid24
architectures: [models/gnn, models/attention]
datasets: [data/sbm]
hyperparameter_space:
  learning_rate: [0.001, 0.01]
  model.num_layers: [4, 8]
seeds: [1, 2, 3]
command: [fake]
config_dir: configs
`;

/**
 * A temp project whose `configs/` holds `models/gnn`, `models/attention` and `data/sbm`.
 * The caller removes it.
 */
export async function makeConfigProject(prefix: string): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), prefix));
  await mkdir(path.join(root, "configs/models"), { recursive: true });
  await mkdir(path.join(root, "configs/data"), { recursive: true });
  await writeFile(path.join(root, "configs/models/gnn.yaml"), "_target_: GNN\n");
  await writeFile(path.join(root, "configs/models/attention.yaml"), "_target_: Attention\n");
  await writeFile(path.join(root, "configs/data/sbm.yaml"), "num_nodes: 20\n");
  return root;
}
