"""Synthetic binary classification data, standard library only.

`blobs`: two Gaussian clouds `separation` apart (a line separates them well).
`moons`: two interleaved half circles (a line cannot; an MLP can).
Both flip a fraction `label_noise` of the labels. The points depend on `generation_seed`
(a fixed dataset); the train/val/test split depends on the run's `seed`.
"""

import math
import random


def sample(data):
    rng = random.Random(f"{data['generation_seed']}/points")
    points = []
    for index in range(data["num_samples"]):
        label = index % 2
        if data["_target_"] == "blobs":
            centre = data["separation"] / 2 * (1 if label else -1)
            x = [rng.gauss(centre if d == 0 else 0.0, 1.0) for d in range(data["num_features"])]
        else:
            angle = rng.uniform(0, math.pi)
            x = [math.cos(angle), math.sin(angle)] if label == 0 else [1 - math.cos(angle), 0.5 - math.sin(angle)]
            x = [v + rng.gauss(0, data["jitter"]) for v in x]
            x += [rng.gauss(0, 1.0) for _ in range(data["num_features"] - 2)]
        if rng.random() < data["label_noise"]:
            label = 1 - label
        points.append((x, label))
    return points


def split(data, seed):
    """(train, val, test): lists of (features, label), standardised with train statistics."""
    points = sample(data)
    random.Random(f"{seed}/split").shuffle(points)
    n_val = int(len(points) * data["val_fraction"])
    n_test = int(len(points) * data["test_fraction"])
    train = points[n_val + n_test:]
    dims = len(points[0][0])
    mean = [sum(x[d] for x, _ in train) / len(train) for d in range(dims)]
    std = [math.sqrt(sum((x[d] - mean[d]) ** 2 for x, _ in train) / len(train)) or 1.0 for d in range(dims)]
    scaled = [([(x[d] - mean[d]) / std[d] for d in range(dims)], y) for x, y in points]
    return scaled[n_val + n_test:], scaled[:n_val], scaled[n_val:n_val + n_test]


def read_data_settings(settings):
    """Checks the `data` section; returns it as a dict."""
    target = settings.get("data._target_", str, choices=["blobs", "moons"])
    data = {
        "_target_": target,
        "num_samples": settings.get("data.num_samples", int, 10, 1_000_000),
        "num_features": settings.get("data.num_features", int, 2 if target == "moons" else 1, 1000),
        "label_noise": settings.get("data.label_noise", float, 0, 0.5),
        "val_fraction": settings.get("data.val_fraction", float, 0.05, 0.45, default=0.2),
        "test_fraction": settings.get("data.test_fraction", float, 0.05, 0.45, default=0.2),
        "generation_seed": settings.get("data.generation_seed", int, default=0),
    }
    if target == "blobs":
        data["separation"] = settings.get("data.separation", float, 0, 100)
    elif target == "moons":
        data["jitter"] = settings.get("data.jitter", float, 0, 10)
    return data


def constant_loss(train, rows):
    """Cross-entropy of always predicting the training set's positive rate."""
    p = min(0.99, max(0.01, sum(y for _, y in train) / len(train)))
    return -sum(y * math.log(p) + (1 - y) * math.log(1 - p) for _, y in rows) / len(rows)
