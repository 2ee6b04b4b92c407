#!/usr/bin/env node
// Learns to denoise the adjacency matrices of stochastic-block-model graphs: the model sees
// a graph with some node pairs flipped and predicts, for each pair, whether the clean graph
// has that edge. Plain Node, no dependencies; one run takes about a second on one core.
//
// The tmgg experiment contract (DESIGN.md section 4):
//   in:  TMGG_CONFIG  the resolved config (JSON), TMGG_RUN_DIR  an empty folder for this run,
//        TMGG_RUN_ID, TMGG_STAGE, TMGG_SEED
//   out: $TMGG_RUN_DIR/metrics.json        {"val_loss": …, "test_loss": …, …}
//        $TMGG_RUN_DIR/metrics.jsonl       one line per epoch
//        $TMGG_RUN_DIR/checkpoints/model.json
// By hand: node train.mjs --config config.json --run-dir out/
// Exit codes: 0 trained, 2 the config or the environment is unusable, 1 anything else.
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { checkConfig } from "./lib/config.mjs";
import { createEdgeMlp } from "./lib/edge-mlp.mjs";
import { createGnn } from "./lib/gnn.mjs";
import { createOptimizer } from "./lib/optimizer.mjs";
import { createRng } from "./lib/random.mjs";
import { edgeDensity, makeDataset } from "./lib/sbm.mjs";

const NAME = "[sbm-denoising]";
const MODELS = { edge_mlp: createEdgeMlp, gnn: createGnn };

function usageError(message) {
  process.stderr.write(`${NAME} ${message}\n`);
  process.exit(2);
}

function readInputs() {
  let args;
  try {
    args = parseArgs({
      options: { config: { type: "string" }, "run-dir": { type: "string" } },
    }).values;
  } catch (error) {
    usageError(`${error.message}; usage: node train.mjs [--config config.json] [--run-dir folder]`);
  }
  const configPath = args.config ?? process.env.TMGG_CONFIG;
  if (!configPath) {
    usageError(
      "no config: set TMGG_CONFIG to the resolved config.json (the tmgg runners do) or pass --config <file>",
    );
  }
  const runDir = args["run-dir"] ?? process.env.TMGG_RUN_DIR ?? path.dirname(configPath);
  let config;
  try {
    config = JSON.parse(readFileSync(configPath, "utf8"));
  } catch (error) {
    usageError(`cannot read the config ${configPath}: ${error.message}`);
  }
  const envSeed = process.env.TMGG_SEED === undefined ? undefined : Number(process.env.TMGG_SEED);
  const { settings, problems, warnings } = checkConfig(config, { envSeed });
  for (const warning of warnings ?? []) process.stderr.write(`${NAME} warning: ${warning}\n`);
  if (problems) {
    usageError(`invalid config ${configPath}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
  try {
    mkdirSync(path.join(runDir, "checkpoints"), { recursive: true });
  } catch (error) {
    usageError(`cannot write to the run folder ${runDir}: ${error.message}`);
  }
  return { settings, runDir, runId: process.env.TMGG_RUN_ID ?? "adhoc" };
}

/** Mean BCE and accuracy over graphs, accumulating gradients (scaled to the mean) when asked. */
function evaluate(model, graphs, wantGrad = false) {
  const pairs = graphs.length * graphs[0].target.length;
  let loss = 0;
  let correct = 0;
  for (const graph of graphs) {
    const out = model.graphLoss(graph, 1 / pairs, wantGrad);
    loss += out.loss;
    correct += out.correct;
  }
  return { loss: loss / pairs, accuracy: correct / pairs };
}

/** BCE of always predicting `p`, and accuracy of taking the noisy graph at face value. */
function baselines(graphs, p) {
  let loss = 0;
  let agree = 0;
  let count = 0;
  for (const g of graphs) {
    for (let k = 0; k < g.target.length; k++) {
      const y = g.target[k];
      loss -= y * Math.log(p) + (1 - y) * Math.log(1 - p);
      agree += g.input[k] === y ? 1 : 0;
      count++;
    }
  }
  return { constantLoss: loss / count, inputAccuracy: agree / count };
}

function writeJsonAtomically(file, value) {
  writeFileSync(`${file}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

function main() {
  const started = performance.now();
  const { settings, runDir, runId } = readInputs();
  const { model: modelConfig, data, training, seed } = settings;
  const dataset = makeDataset(data, seed);
  const density = Math.min(0.99, Math.max(0.01, edgeDensity(dataset.train)));
  const model = MODELS[modelConfig._target_](
    modelConfig,
    dataset,
    createRng(seed, "init"),
    density,
  );
  const optimizer = createOptimizer(training.optimizer, model.params, {
    learningRate: settings.learning_rate,
    weightDecay: settings.weight_decay,
  });
  const numParameters = model.params.reduce((sum, p) => sum + p.value.length, 0);
  console.log(
    `${NAME} run ${runId}: ${model.describe} (${numParameters} parameters) on ${dataset.train.length}/${dataset.val.length}/${dataset.test.length} graphs of ${data.num_nodes} nodes, noise ${data.noise}; ${training.optimizer} lr ${settings.learning_rate}, seed ${seed}`,
  );

  const progressFile = path.join(runDir, "metrics.jsonl");
  const orderRng = createRng(seed, "order");
  const order = dataset.train.map((_, i) => i);
  let train = { loss: Number.NaN };
  let val = evaluate(model, dataset.val);
  for (let epoch = 1; epoch <= training.epochs; epoch++) {
    orderRng.shuffle(order);
    let trainLoss = 0;
    for (let start = 0; start < order.length; start += training.batch_size) {
      const batch = order.slice(start, start + training.batch_size).map((i) => dataset.train[i]);
      optimizer.zeroGrad();
      const out = evaluate(model, batch, true);
      trainLoss += out.loss * batch.length;
      optimizer.step();
    }
    train = { loss: trainLoss / order.length };
    val = evaluate(model, dataset.val);
    if (!Number.isFinite(val.loss)) {
      process.stderr.write(
        `${NAME} run ${runId}: val_loss became ${val.loss} at epoch ${epoch}; lower learning_rate (now ${settings.learning_rate})\n`,
      );
      process.exit(1);
    }
    appendFileSync(
      progressFile,
      `${JSON.stringify({ step: epoch, epoch, train_loss: train.loss, val_loss: val.loss, val_accuracy: val.accuracy })}\n`,
    );
    if (epoch === 1 || epoch % 10 === 0 || epoch === training.epochs) {
      console.log(
        `${NAME} epoch ${epoch}/${training.epochs}  train_loss ${train.loss.toFixed(4)}  val_loss ${val.loss.toFixed(4)}  val_accuracy ${val.accuracy.toFixed(4)}`,
      );
    }
  }

  const test = evaluate(model, dataset.test);
  const baseline = baselines(dataset.test, density);
  const metrics = {
    val_loss: val.loss,
    val_accuracy: val.accuracy,
    test_loss: test.loss,
    test_accuracy: test.accuracy,
    train_loss: train.loss,
    baseline_loss: baseline.constantLoss,
    input_accuracy: baseline.inputAccuracy,
    num_parameters: numParameters,
    epochs: training.epochs,
  };
  writeJsonAtomically(path.join(runDir, "checkpoints", "model.json"), {
    format: "sbm-denoising/1",
    model: modelConfig,
    data,
    epoch: training.epochs,
    val_loss: val.loss,
    ...model.extra,
    params: Object.fromEntries(
      model.params.map((p) => [p.name, { shape: p.shape, value: [...p.value] }]),
    ),
  });
  writeJsonAtomically(path.join(runDir, "metrics.json"), metrics);
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  console.log(
    `${NAME} done in ${seconds} s: test_loss ${test.loss.toFixed(4)} (always-${density.toFixed(2)} baseline ${baseline.constantLoss.toFixed(4)}), test_accuracy ${test.accuracy.toFixed(4)} (noisy input ${baseline.inputAccuracy.toFixed(4)})`,
  );
}

main();
