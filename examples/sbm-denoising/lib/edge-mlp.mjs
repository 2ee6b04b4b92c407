// `edge_mlp`: scores each node pair on its own from a few features of the noisy graph,
// with `num_layers` hidden ReLU layers of width `hidden` (0 layers: logistic regression).
import { addColumnSums, addMatmulAT, addRow, matmul, matmulBT } from "./matrix.mjs";
import { bceWithLogit, createParameter } from "./optimizer.mjs";

/** The features of a pair (i, j), all computed from the noisy adjacency A. */
export const EDGE_FEATURES = [
  "noisy_edge", // A_ij
  "common_neighbours", // (A²)_ij / n
  "cosine", // (A²)_ij / sqrt(deg_i · deg_j): how alike the two neighbourhoods are
  "degree_sum", // (deg_i + deg_j) / 2n
  "paths_3", // (A³)_ij / n²
];

function rawFeatures(graph, pairs) {
  const { n, noisy } = graph;
  const a2 = matmul(noisy, noisy, n, n, n);
  const a3 = matmul(a2, noisy, n, n, n);
  const f = EDGE_FEATURES.length;
  const out = new Float64Array(pairs.count * f);
  for (let k = 0; k < pairs.count; k++) {
    const i = pairs.rows[k];
    const j = pairs.cols[k];
    const di = a2[i * n + i];
    const dj = a2[j * n + j];
    const cn = a2[i * n + j];
    out[k * f] = noisy[i * n + j];
    out[k * f + 1] = cn / n;
    out[k * f + 2] = cn / Math.sqrt(Math.max(1, di * dj));
    out[k * f + 3] = (di + dj) / (2 * n);
    out[k * f + 4] = a3[i * n + j] / (n * n);
  }
  return out;
}

/** Mean and standard deviation of each feature over the training graphs. */
function featureStats(graphs) {
  const f = EDGE_FEATURES.length;
  const mean = new Float64Array(f);
  const std = new Float64Array(f);
  let rows = 0;
  for (const g of graphs) {
    for (let r = 0; r < g.features.length / f; r++) {
      for (let c = 0; c < f; c++) mean[c] += g.features[r * f + c];
    }
    rows += g.features.length / f;
  }
  for (let c = 0; c < f; c++) mean[c] /= rows;
  for (const g of graphs) {
    for (let r = 0; r < g.features.length / f; r++) {
      for (let c = 0; c < f; c++) std[c] += (g.features[r * f + c] - mean[c]) ** 2;
    }
  }
  for (let c = 0; c < f; c++) std[c] = Math.sqrt(std[c] / rows) || 1;
  return { mean, std };
}

/** The model over a dataset: its parameters and the loss (and gradient) on one graph. */
export function createEdgeMlp(model, dataset, rng, density) {
  const all = [...dataset.train, ...dataset.val, ...dataset.test];
  for (const g of all) g.features = rawFeatures(g, dataset.pairs);
  const stats = featureStats(dataset.train);
  const f = EDGE_FEATURES.length;
  for (const g of all) {
    for (let i = 0; i < g.features.length; i++) {
      g.features[i] = (g.features[i] - stats.mean[i % f]) / stats.std[i % f];
    }
  }

  const widths = [f, ...Array.from({ length: model.num_layers }, () => model.hidden), 1];
  const layers = [];
  for (let l = 0; l + 1 < widths.length; l++) {
    const [din, dout] = [widths[l], widths[l + 1]];
    const scale = Math.sqrt(2 / din);
    const isLast = l + 2 === widths.length;
    layers.push({
      din,
      dout,
      weight: createParameter(`layers.${l}.weight`, [din, dout], {
        init: () => rng.normal() * scale * (isLast ? 0.1 : 1),
      }),
      bias: createParameter(`layers.${l}.bias`, [dout], {
        decay: false,
        init: () => (isLast ? Math.log(density / (1 - density)) : 0),
      }),
    });
  }

  /** Sum of BCE over the graph's pairs; adds `scale` × its gradient to the parameters. */
  function graphLoss(graph, scale, wantGrad) {
    const m = dataset.pairs.count;
    const inputs = [graph.features];
    const preacts = [];
    let x = graph.features;
    for (const [l, layer] of layers.entries()) {
      const z = addRow(
        matmul(x, layer.weight.value, m, layer.din, layer.dout),
        layer.bias.value,
        m,
        layer.dout,
      );
      preacts.push(z);
      if (l + 1 < layers.length) {
        x = z.map((v) => (v > 0 ? v : 0));
        inputs.push(x);
      }
    }
    const logits = preacts[preacts.length - 1];
    let loss = 0;
    let correct = 0;
    let dz = new Float64Array(m);
    for (let k = 0; k < m; k++) {
      const y = graph.target[k];
      const out = bceWithLogit(logits[k], y);
      loss += out.loss;
      correct += (out.p >= 0.5 ? 1 : 0) === y ? 1 : 0;
      dz[k] = out.dz * scale;
    }
    if (wantGrad) {
      for (let l = layers.length - 1; l >= 0; l--) {
        const layer = layers[l];
        addMatmulAT(inputs[l], dz, m, layer.din, layer.dout, layer.weight.grad);
        addColumnSums(dz, m, layer.dout, layer.bias.grad);
        if (l === 0) break;
        const dx = matmulBT(dz, layer.weight.value, m, layer.dout, layer.din);
        const z = preacts[l - 1];
        for (let i = 0; i < dx.length; i++) if (z[i] <= 0) dx[i] = 0;
        dz = dx;
      }
    }
    return { loss, correct, count: m };
  }

  return {
    kind: "edge_mlp",
    params: layers.flatMap((layer) => [layer.weight, layer.bias]),
    describe:
      model.num_layers === 0
        ? "logistic regression on 5 edge features"
        : `edge MLP, ${model.num_layers} x ${model.hidden} hidden`,
    graphLoss,
    extra: { features: EDGE_FEATURES, feature_mean: [...stats.mean], feature_std: [...stats.std] },
  };
}
