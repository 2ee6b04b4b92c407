// Dense matrix products on row-major Float64Arrays: all the linear algebra the models need.

/** out (m×n) = A (m×k) · B (k×n). */
export function matmul(a, b, m, k, n, out = new Float64Array(m * n)) {
  out.fill(0);
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    const oi = i * n;
    for (let p = 0; p < k; p++) {
      const x = a[ai + p];
      if (x === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) out[oi + j] += x * b[bp + j];
    }
  }
  return out;
}

/** out (k×n) += Aᵀ · B, where A is m×k and B is m×n (accumulates: used for gradients). */
export function addMatmulAT(a, b, m, k, n, out) {
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    const bi = i * n;
    for (let p = 0; p < k; p++) {
      const x = a[ai + p];
      if (x === 0) continue;
      const op = p * n;
      for (let j = 0; j < n; j++) out[op + j] += x * b[bi + j];
    }
  }
  return out;
}

/** out (m×k) = A · Bᵀ, where A is m×n and B is k×n. */
export function matmulBT(a, b, m, n, k, out = new Float64Array(m * k)) {
  for (let i = 0; i < m; i++) {
    const ai = i * n;
    for (let p = 0; p < k; p++) {
      const bp = p * n;
      let s = 0;
      for (let j = 0; j < n; j++) s += a[ai + j] * b[bp + j];
      out[i * k + p] = s;
    }
  }
  return out;
}

/** Adds a row vector (length n) to every row of an m×n matrix, in place. */
export function addRow(x, row, m, n) {
  for (let i = 0; i < m; i++) {
    const xi = i * n;
    for (let j = 0; j < n; j++) x[xi + j] += row[j];
  }
  return x;
}

/** Column sums of an m×n matrix, added into `out`. */
export function addColumnSums(x, m, n, out) {
  for (let i = 0; i < m; i++) {
    const xi = i * n;
    for (let j = 0; j < n; j++) out[j] += x[xi + j];
  }
  return out;
}
