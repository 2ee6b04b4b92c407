#!/usr/bin/env python3
"""An MLP (or logistic regression) in PyTorch on the same synthetic data as train.py: the
tmgg contract with a real framework. Runs on the GPU when one is visible (the local runner
sets CUDA_VISIBLE_DEVICES; Modal sandboxes have one), else on the CPU.

    TMGG_CONFIG=config.json TMGG_RUN_DIR=out/ python3 examples/python/train_torch.py

Honours `learning_rate`, `weight_decay`, `seed`, `training.*`, `model.num_layers`,
`model.hidden` and the `data` section; accepts Hydra-style `key=value` arguments like
train.py. Exit 2: unusable config, or no PyTorch in this Python.
"""

import os
import sys
import time

from contract import NAME, Settings, append_progress, fail, load_run, write_json, write_metrics
from synthetic import constant_loss, read_data_settings, split

try:
    import torch
except ImportError as error:
    fail(f"train_torch.py needs PyTorch, which {sys.executable} cannot import ({error}). "
         "Install it (pip install torch; on Debian, apt-get install python3-torch for /usr/bin/python3) "
         "and point the stage's command at that Python, or use examples/python/train.py, "
         "which needs only the standard library.")


def build_model(target, num_layers, hidden, num_features):
    if target == "logistic":
        return torch.nn.Linear(num_features, 1)
    layers = []
    width = num_features
    for _ in range(num_layers):
        layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
        width = hidden
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


def as_tensors(rows, device):
    x = torch.tensor([features for features, _ in rows], dtype=torch.float32, device=device)
    y = torch.tensor([float(label) for _, label in rows], dtype=torch.float32, device=device)
    return x, y


def main():
    started = time.perf_counter()
    config, run_dir, run_id = load_run()
    settings = Settings(config)
    learning_rate = settings.get("learning_rate", float, 1e-9, 100)
    weight_decay = settings.get("weight_decay", float, 0, 10, default=0.0)
    seed = settings.get("seed", int)
    epochs = settings.get("training.epochs", int, 1, 100_000)
    batch_size = settings.get("training.batch_size", int, 1, 1_000_000)
    target = settings.get("model._target_", str, choices=["logistic", "mlp"])
    num_layers = settings.get("model.num_layers", int, 1, 32) if target == "mlp" else 0
    hidden = settings.get("model.hidden", int, 1, 65_536) if target == "mlp" else 0
    data = read_data_settings(settings)
    settings.check(os.environ.get("TMGG_CONFIG", "(from arguments)"))

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train, val, test = split(data, seed)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (as_tensors(rows, device) for rows in (train, val, test))
    model = build_model(target, num_layers, hidden, x_train.shape[1]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed)
    print(f"{NAME} run {run_id}: torch {torch.__version__} {target} on {device}, "
          f"{len(train)}/{len(val)}/{len(test)} {data['_target_']} points; adam lr {learning_rate}, seed {seed}",
          flush=True)

    def evaluate(x, y):
        with torch.no_grad():
            logits = model(x).squeeze(1)
            return loss_fn(logits, y).item(), ((logits >= 0).float() == y).float().mean().item()

    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator).to(device)
        for start in range(0, len(train), batch_size):
            index = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[index]).squeeze(1), y_train[index])
            loss.backward()
            optimizer.step()
        model.eval()
        train_loss, _ = evaluate(x_train, y_train)
        val_loss, val_accuracy = evaluate(x_val, y_val)
        append_progress(run_dir, {"step": epoch, "train_loss": train_loss, "val_loss": val_loss,
                                  "val_accuracy": val_accuracy})

    test_loss, test_accuracy = evaluate(x_test, y_test)
    torch.save(model.state_dict(), os.path.join(run_dir, "checkpoints", "model.pt"))
    write_json(os.path.join(run_dir, "checkpoints", "model.json"),
               {"target": target, "num_layers": num_layers, "hidden": hidden, "epoch": epochs})
    write_metrics(run_dir, {
        "val_loss": val_loss,
        "val_accuracy": val_accuracy,
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "train_loss": train_loss,
        "baseline_loss": constant_loss(train, test),
    })
    print(f"{NAME} done in {time.perf_counter() - started:.2f} s on {device}: val_loss {val_loss:.4f}, "
          f"test_loss {test_loss:.4f}, test_accuracy {test_accuracy:.4f}", flush=True)


if __name__ == "__main__":
    main()
