// Checks the resolved config (what `tmgg` composed from configs/ and the stage) and fills
// in defaults. Every problem is reported at once, by dotted key, with where to fix it.

const int = (min, max) => ({ kind: "int", min, max });
const num = (min, max, { above = false } = {}) => ({ kind: "number", min, max, above });
const oneOf = (...values) => ({ kind: "enum", values });

const TOP = {
  learning_rate: num(0, 10, { above: true }),
  weight_decay: { ...num(0, 1), default: 0 },
  seed: int(-(2 ** 31), 2 ** 31 - 1),
};
const TRAINING = {
  epochs: int(1, 10_000),
  batch_size: int(1, 100_000),
  optimizer: { ...oneOf("adam", "sgd"), default: "adam" },
};
const MODELS = {
  edge_mlp: { num_layers: int(0, 8), hidden: int(1, 256) },
  gnn: { num_layers: int(1, 8), hidden: int(1, 256) },
};
const DATASETS = {
  sbm: {
    num_nodes: int(4, 128),
    num_blocks: int(1, 128),
    p_in: num(0, 1),
    p_out: num(0, 1),
    noise: num(0, 0.49),
    num_train: int(1, 100_000),
    num_val: int(1, 100_000),
    num_test: int(1, 100_000),
    generation_seed: { ...int(-(2 ** 31), 2 ** 31 - 1), default: 0 },
  },
};
/** Top-level keys the composer adds or that belong to other tools: accepted, unused. */
const BOOKKEEPING = new Set(["architecture", "dataset", "stage", "training", "model", "data"]);

function editDistance(a, b) {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

function closest(key, known) {
  let best;
  for (const candidate of known) {
    const d = editDistance(key, candidate);
    if (d <= 3 && (!best || d < best.d)) best = { candidate, d };
  }
  return best ? ` (did you mean "${best.candidate}"?)` : "";
}

function describeRule(rule) {
  if (rule.kind === "enum") return `one of ${rule.values.map((v) => JSON.stringify(v)).join(", ")}`;
  const what = rule.kind === "int" ? "an integer" : "a number";
  return `${what} ${rule.above ? "above" : "from"} ${rule.min} ${rule.above ? "and at most" : "to"} ${rule.max}`;
}

function isValid(value, rule) {
  if (rule.kind === "enum") return rule.values.includes(value);
  if (typeof value !== "number" || !Number.isFinite(value)) return false;
  if (rule.kind === "int" && !Number.isInteger(value)) return false;
  return (rule.above ? value > rule.min : value >= rule.min) && value <= rule.max;
}

function checkSection(section, rules, prefix, problems, where) {
  const out = {};
  for (const [key, rule] of Object.entries(rules)) {
    const value = section[key];
    if (value === undefined) {
      if ("default" in rule) out[key] = rule.default;
      else problems.push(`${prefix}${key} is missing; set it ${where}`);
      continue;
    }
    if (!isValid(value, rule)) {
      problems.push(
        `${prefix}${key} must be ${describeRule(rule)} (got ${JSON.stringify(value)}); fix it ${where}`,
      );
      continue;
    }
    out[key] = value;
  }
  return out;
}

function checkUnknown(section, known, prefix, problems, ignore = []) {
  for (const key of Object.keys(section)) {
    if (!known.includes(key) && !ignore.includes(key)) {
      problems.push(
        `${prefix}${key} is not a setting of this experiment${closest(key, known)}; known: ${known.join(", ")}`,
      );
    }
  }
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * The checked settings, or `{ problems }` listing everything wrong. Unknown keys inside
 * `model`, `data` and `training` are problems (a misspelt hyperparameter would otherwise
 * sweep nothing); unknown top-level keys are returned as `warnings`.
 */
export function checkConfig(config, { envSeed } = {}) {
  const problems = [];
  const warnings = [];
  if (!isObject(config)) return { problems: ["the config must be a JSON object"] };
  const hint = "in the stage's hyperparameter_space or in configs/base.yaml";
  const withSeed =
    config.seed === undefined && envSeed !== undefined ? { ...config, seed: envSeed } : config;
  const top = checkSection(withSeed, TOP, "", problems, hint);
  for (const key of Object.keys(config)) {
    if (!(key in TOP) && !BOOKKEEPING.has(key)) {
      warnings.push(
        `config key "${key}" is not used by this experiment${closest(key, Object.keys(TOP))}`,
      );
    }
  }

  const sections = {};
  for (const [name, rulesByTarget, file] of [
    ["model", MODELS, "the architecture file (configs/models/*.yaml)"],
    ["data", DATASETS, "the dataset file (configs/data/*.yaml)"],
  ]) {
    const section = config[name];
    if (!isObject(section)) {
      problems.push(
        `${name} is missing or not an object; the stage's ${name === "model" ? "architectures" : "datasets"} must name a file under configs/`,
      );
      continue;
    }
    const target = section._target_;
    const rules = rulesByTarget[target];
    if (!rules) {
      problems.push(
        `${name}._target_ must be one of ${Object.keys(rulesByTarget).join(", ")} (got ${JSON.stringify(target)}); set it in ${file}`,
      );
      continue;
    }
    checkUnknown(section, Object.keys(rules), `${name}.`, problems, ["_target_"]);
    sections[name] = {
      _target_: target,
      ...checkSection(
        section,
        rules,
        `${name}.`,
        problems,
        `in ${file} or the stage's hyperparameter_space`,
      ),
    };
  }
  const training = isObject(config.training) ? config.training : {};
  if (config.training !== undefined && !isObject(config.training))
    problems.push("training must be an object (see configs/base.yaml)");
  checkUnknown(training, Object.keys(TRAINING), "training.", problems);
  sections.training = checkSection(
    training,
    TRAINING,
    "training.",
    problems,
    "in configs/base.yaml or the stage's hyperparameter_space",
  );

  const data = sections.data;
  if (
    data &&
    Number.isInteger(data.num_blocks) &&
    Number.isInteger(data.num_nodes) &&
    data.num_blocks > data.num_nodes
  ) {
    problems.push(
      `data.num_blocks (${data.num_blocks}) cannot exceed data.num_nodes (${data.num_nodes}); fix the dataset file`,
    );
  }
  if (problems.length > 0) return { problems, warnings };
  return { settings: { ...top, ...sections }, warnings };
}
