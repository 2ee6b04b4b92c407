// `gnn`: a graph convolutional network. Node i starts from its row of the normalised noisy
// adjacency Â = D^-1/2 (A + I) D^-1/2; each of `num_layers` layers computes
// H' = ReLU(Â H W + b) with `hidden` channels; a pair's logit is
// Σ_k w_k h_ik h_jk + c · A_ij + b0 (nodes with alike embeddings are likely in one block).
import { addColumnSums, addMatmulAT, addRow, matmul } from "./matrix.mjs";
import { bceWithLogit, createParameter } from "./optimizer.mjs";

function normalisedAdjacency(graph) {
  const { n, noisy } = graph;
  const degree = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    degree[i] = 1;
    for (let j = 0; j < n; j++) degree[i] += noisy[i * n + j];
  }
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const a = i === j ? 1 : noisy[i * n + j];
      out[i * n + j] = a / Math.sqrt(degree[i] * degree[j]);
    }
  }
  return out;
}

/** The model over a dataset: its parameters and the loss (and gradient) on one graph. */
export function createGnn(model, dataset, rng, density) {
  const n = dataset.numNodes;
  for (const g of [...dataset.train, ...dataset.val, ...dataset.test]) {
    g.ahat = normalisedAdjacency(g);
    g.ahat2 = matmul(g.ahat, g.ahat, n, n, n); // Â · X for X = Â: the first layer's fixed input
  }
  const h = model.hidden;
  const layers = [];
  for (let l = 0; l < model.num_layers; l++) {
    const din = l === 0 ? n : h;
    const scale = Math.sqrt(2 / din) * (l === 0 ? Math.sqrt(n) : 1);
    layers.push({
      din,
      weight: createParameter(`layers.${l}.weight`, [din, h], { init: () => rng.normal() * scale }),
      bias: createParameter(`layers.${l}.bias`, [h], { decay: false, init: () => 0.1 }),
    });
  }
  const decoderWeight = createParameter("decoder.weight", [h], { init: () => 0.1 / h });
  const decoderSkip = createParameter("decoder.skip", [1], { decay: false });
  const decoderBias = createParameter("decoder.bias", [1], {
    decay: false,
    init: () => Math.log(density / (1 - density)),
  });

  /** Sum of BCE over the graph's pairs; adds `scale` × its gradient to the parameters. */
  function graphLoss(graph, scale, wantGrad) {
    const { rows, cols, count } = dataset.pairs;
    // Forward: P_l = Â H_l (P_0 = Â² precomputed), Z_l = P_l W_l + b_l, H_{l+1} = ReLU(Z_l).
    const ps = [];
    const zs = [];
    let hl = null;
    for (const [l, layer] of layers.entries()) {
      const p = l === 0 ? graph.ahat2 : matmul(graph.ahat, hl, n, n, h);
      const z = addRow(matmul(p, layer.weight.value, n, layer.din, h), layer.bias.value, n, h);
      ps.push(p);
      zs.push(z);
      hl = z.map((v) => (v > 0 ? v : 0));
    }
    const w = decoderWeight.value;
    const skip = decoderSkip.value[0];
    const bias = decoderBias.value[0];
    let loss = 0;
    let correct = 0;
    const g = wantGrad ? new Float64Array(n * n) : null;
    let dSkip = 0;
    let dBias = 0;
    for (let k = 0; k < count; k++) {
      const i = rows[k];
      const j = cols[k];
      let s = 0;
      for (let c = 0; c < h; c++) s += w[c] * hl[i * h + c] * hl[j * h + c];
      const x = graph.input[k];
      const y = graph.target[k];
      const out = bceWithLogit(s + skip * x + bias, y);
      loss += out.loss;
      correct += (out.p >= 0.5 ? 1 : 0) === y ? 1 : 0;
      if (g) {
        const dz = out.dz * scale;
        g[i * n + j] = g[j * n + i] = dz;
        dSkip += dz * x;
        dBias += dz;
      }
    }
    if (g) {
      decoderSkip.grad[0] += dSkip;
      decoderBias.grad[0] += dBias;
      // S = H diag(w) Hᵀ: dH = G H diag(w), dw_c = ½ Σ_i h_ic (G H)_ic (G symmetric, each pair once).
      const gh = matmul(g, hl, n, n, h);
      let dh = new Float64Array(n * h);
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < h; c++) {
          decoderWeight.grad[c] += 0.5 * hl[i * h + c] * gh[i * h + c];
          dh[i * h + c] = gh[i * h + c] * w[c];
        }
      }
      for (let l = layers.length - 1; l >= 0; l--) {
        const layer = layers[l];
        const z = zs[l];
        for (let i = 0; i < dh.length; i++) if (z[i] <= 0) dh[i] = 0;
        addMatmulAT(ps[l], dh, n, layer.din, h, layer.weight.grad);
        addColumnSums(dh, n, h, layer.bias.grad);
        if (l === 0) break;
        // dP = dZ Wᵀ, dH = Âᵀ dP (Â is symmetric).
        const dp = new Float64Array(n * h);
        const wv = layer.weight.value;
        for (let i = 0; i < n; i++) {
          for (let a = 0; a < h; a++) {
            let s = 0;
            for (let b = 0; b < h; b++) s += dh[i * h + b] * wv[a * h + b];
            dp[i * h + a] = s;
          }
        }
        dh = matmul(graph.ahat, dp, n, n, h);
      }
    }
    return { loss, correct, count };
  }

  return {
    kind: "gnn",
    params: [
      ...layers.flatMap((layer) => [layer.weight, layer.bias]),
      decoderWeight,
      decoderSkip,
      decoderBias,
    ],
    describe: `GCN, ${model.num_layers} layer${model.num_layers === 1 ? "" : "s"} x ${h} channels`,
    graphLoss,
    extra: { num_nodes: n },
  };
}
