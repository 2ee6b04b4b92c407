// Parameters and the optimizers that update them (Adam and plain SGD), with L2 weight decay.

/**
 * A trainable tensor: `value` and `grad` are flat Float64Arrays of `shape`'s size.
 * `decay` says whether weight decay applies (weights yes, biases no).
 */
export function createParameter(name, shape, { decay = true, init = () => 0 } = {}) {
  const size = shape.reduce((a, b) => a * b, 1);
  const value = new Float64Array(size);
  for (let i = 0; i < size; i++) value[i] = init(i);
  return { name, shape, value, grad: new Float64Array(size), decay };
}

/** Numerically stable binary cross-entropy of a logit against a 0/1 target, and its gradient. */
export function bceWithLogit(z, y) {
  const loss = Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
  const p = z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
  return { loss, p, dz: p - y };
}

/** The optimizer named by `training.optimizer`, over `params`. */
export function createOptimizer(kind, params, { learningRate, weightDecay }) {
  const moments = params.map((p) => ({
    m: new Float64Array(p.value.length),
    v: new Float64Array(p.value.length),
  }));
  const beta1 = 0.9;
  const beta2 = 0.999;
  let t = 0;
  return {
    zeroGrad() {
      for (const p of params) p.grad.fill(0);
    },
    /** One update from the gradients in `param.grad`. */
    step() {
      t++;
      const c1 = 1 - beta1 ** t;
      const c2 = 1 - beta2 ** t;
      params.forEach((p, index) => {
        const { m, v } = moments[index];
        const decay = p.decay ? weightDecay : 0;
        for (let i = 0; i < p.value.length; i++) {
          const g = p.grad[i] + decay * p.value[i];
          if (kind === "sgd") {
            p.value[i] -= learningRate * g;
            continue;
          }
          m[i] = beta1 * m[i] + (1 - beta1) * g;
          v[i] = beta2 * v[i] + (1 - beta2) * g * g;
          p.value[i] -= (learningRate * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + 1e-8);
        }
      });
    },
  };
}
