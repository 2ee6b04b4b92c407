// The data: stochastic-block-model graphs with some node pairs flipped. The model sees the
// noisy adjacency and predicts the clean one.
import { createRng } from "./random.mjs";

/** Node pairs (i < j) of an n-node graph, as two index arrays. */
export function upperPairs(n) {
  const count = (n * (n - 1)) / 2;
  const rows = new Int32Array(count);
  const cols = new Int32Array(count);
  let k = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      rows[k] = i;
      cols[k] = j;
      k++;
    }
  }
  return { rows, cols, count };
}

/**
 * One SBM graph: nodes split evenly into blocks (labels shuffled), an edge with probability
 * `p_in` inside a block and `p_out` across, then each pair flipped with probability `noise`.
 * `clean` and `noisy` are n×n symmetric 0/1 matrices (row-major Float64Array).
 */
function sampleGraph(data, rng) {
  const n = data.num_nodes;
  const blocks = rng.shuffle(Array.from({ length: n }, (_, i) => i % data.num_blocks));
  const clean = new Float64Array(n * n);
  const noisy = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const p = blocks[i] === blocks[j] ? data.p_in : data.p_out;
      const edge = rng.uniform() < p ? 1 : 0;
      const flipped = rng.uniform() < data.noise ? 1 - edge : edge;
      clean[i * n + j] = clean[j * n + i] = edge;
      noisy[i * n + j] = noisy[j * n + i] = flipped;
    }
  }
  return { n, blocks, clean, noisy };
}

/**
 * The dataset of a run. The graphs depend on `data.generation_seed` only (the dataset is
 * fixed, as a real one would be); which graphs land in train, val and test depends on the
 * run's `seed`. Each graph also carries `target` (clean) and `input` (noisy) edge values per
 * node pair, in the order of `pairs`.
 */
export function makeDataset(data, seed) {
  const total = data.num_train + data.num_val + data.num_test;
  const genRng = createRng(data.generation_seed, "sbm-graphs");
  const graphs = Array.from({ length: total }, () => sampleGraph(data, genRng));
  const pairs = upperPairs(data.num_nodes);
  for (const g of graphs) {
    g.target = new Float64Array(pairs.count);
    g.input = new Float64Array(pairs.count);
    for (let k = 0; k < pairs.count; k++) {
      g.target[k] = g.clean[pairs.rows[k] * g.n + pairs.cols[k]];
      g.input[k] = g.noisy[pairs.rows[k] * g.n + pairs.cols[k]];
    }
  }
  createRng(seed, "split").shuffle(graphs);
  return {
    train: graphs.slice(0, data.num_train),
    val: graphs.slice(data.num_train, data.num_train + data.num_val),
    test: graphs.slice(data.num_train + data.num_val),
    pairs,
    numNodes: data.num_nodes,
  };
}

/** Fraction of node pairs that are edges in the clean graphs. */
export function edgeDensity(graphs) {
  let edges = 0;
  let count = 0;
  for (const g of graphs) {
    for (const y of g.target) edges += y;
    count += g.target.length;
  }
  return edges / count;
}
