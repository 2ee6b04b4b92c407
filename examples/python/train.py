#!/usr/bin/env python3
"""Logistic regression on synthetic data with minibatch SGD: a tmgg experiment in plain
Python (standard library only).

    TMGG_CONFIG=config.json TMGG_RUN_DIR=out/ python3 examples/python/train.py
    TMGG_RUN_DIR=out/ python3 examples/python/train.py learning_rate=0.1 seed=2 \
        training.epochs=20 data._target_=blobs data.num_samples=400 ...   # Hydra style

Honours `learning_rate`, `weight_decay`, `seed`, `training.epochs`, `training.batch_size`
and the `data` section (see configs/). Writes metrics.json (val_loss, test_loss, ...),
one metrics.jsonl line per epoch and checkpoints/model.json. Exit 2: unusable config.
"""

import math
import os
import random
import time

from contract import NAME, Settings, append_progress, load_run, write_json, write_metrics
from synthetic import constant_loss, read_data_settings, split


def log_loss_and_accuracy(weights, bias, rows):
    loss = 0.0
    correct = 0
    for x, y in rows:
        z = bias + sum(w * v for w, v in zip(weights, x))
        loss += max(z, 0) - z * y + math.log1p(math.exp(-abs(z)))
        correct += int((z >= 0) == (y == 1))
    return loss / len(rows), correct / len(rows)


def main():
    started = time.perf_counter()
    config, run_dir, run_id = load_run()
    settings = Settings(config)
    learning_rate = settings.get("learning_rate", float, 1e-9, 100)
    weight_decay = settings.get("weight_decay", float, 0, 10, default=0.0)
    seed = settings.get("seed", int)
    epochs = settings.get("training.epochs", int, 1, 100_000)
    batch_size = settings.get("training.batch_size", int, 1, 1_000_000)
    settings.get("model._target_", str, choices=["logistic"])
    data = read_data_settings(settings)
    settings.check(os.environ.get("TMGG_CONFIG", "(from arguments)"))

    train, val, test = split(data, seed)
    rng = random.Random(f"{seed}/init")
    weights = [rng.gauss(0, 0.01) for _ in train[0][0]]
    bias = 0.0
    print(f"{NAME} run {run_id}: logistic regression on {len(train)}/{len(val)}/{len(test)} "
          f"{data['_target_']} points; sgd lr {learning_rate}, seed {seed}", flush=True)

    order_rng = random.Random(f"{seed}/order")
    for epoch in range(1, epochs + 1):
        order_rng.shuffle(train)
        for start in range(0, len(train), batch_size):
            batch = train[start:start + batch_size]
            grad_w = [weight_decay * w for w in weights]
            grad_b = 0.0
            for x, y in batch:
                z = bias + sum(w * v for w, v in zip(weights, x))
                p = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
                for d, v in enumerate(x):
                    grad_w[d] += (p - y) * v / len(batch)
                grad_b += (p - y) / len(batch)
            weights = [w - learning_rate * g for w, g in zip(weights, grad_w)]
            bias -= learning_rate * grad_b
        train_loss, _ = log_loss_and_accuracy(weights, bias, train)
        val_loss, val_accuracy = log_loss_and_accuracy(weights, bias, val)
        append_progress(run_dir, {"step": epoch, "train_loss": train_loss, "val_loss": val_loss,
                                  "val_accuracy": val_accuracy})

    test_loss, test_accuracy = log_loss_and_accuracy(weights, bias, test)
    write_json(os.path.join(run_dir, "checkpoints", "model.json"),
               {"weights": weights, "bias": bias, "epoch": epochs})
    write_metrics(run_dir, {
        "val_loss": val_loss,
        "val_accuracy": val_accuracy,
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "train_loss": train_loss,
        "baseline_loss": constant_loss(train, test),
    })
    print(f"{NAME} done in {time.perf_counter() - started:.2f} s: val_loss {val_loss:.4f}, "
          f"test_loss {test_loss:.4f}, test_accuracy {test_accuracy:.4f}", flush=True)


if __name__ == "__main__":
    main()
