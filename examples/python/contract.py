"""The tmgg experiment contract for Python scripts, standard library only.

A runner starts the script with TMGG_CONFIG (the resolved config, JSON) and TMGG_RUN_DIR
(an empty folder for this run) in the environment. Hydra-style projects get the same
config as `key=value` arguments instead (the stage's `command` ends with "{overrides}"):
both work, and arguments win over the file. The script writes metrics.json (an object of
finite numbers), may append to metrics.jsonl and may write under checkpoints/.
"""

import json
import math
import os
import sys

NAME = "[python-example]"


def fail(message, code=2):
    """Prints a message on stderr and exits (2: the config or environment is unusable)."""
    print(f"{NAME} {message}", file=sys.stderr)
    sys.exit(code)


def parse_value(text):
    """A Hydra override value: JSON when it parses (numbers, true, null, "quoted", [1,2]),
    a list of such values for `[a,b]`, otherwise the text itself (`models/mlp`)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [parse_value(item.strip()) for item in inner.split(",")] if inner else []
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none", "~"):
        return None
    return text


def apply_override(config, arg):
    """Sets `a.b.c=value` in the nested dict `config` (Hydra's `+key=` and `++key=` too)."""
    key, sep, raw = arg.partition("=")
    key = key.lstrip("+")
    if not sep or not key or any(part == "" for part in key.split(".")):
        fail(f"cannot read the argument {arg!r}: overrides look like key=value or a.b.c=value")
    node = config
    parts = key.split(".")
    for index, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            fail(f"cannot set {key}: {'.'.join(parts[: index + 1])} is {child!r}, not a section")
        node = child
    node[parts[-1]] = parse_value(raw)


def load_run(argv=None):
    """The run's config (file, then overrides), its folder and id, from env and arguments.

    Arguments: `--config FILE`, `--run-dir DIR`, and any number of `key=value` overrides.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    config_path = os.environ.get("TMGG_CONFIG")
    run_dir = os.environ.get("TMGG_RUN_DIR")
    overrides = []
    while args:
        arg = args.pop(0)
        if arg in ("--config", "--run-dir"):
            if not args:
                fail(f"{arg} needs a value")
            value = args.pop(0)
            if arg == "--config":
                config_path = value
            else:
                run_dir = value
        elif "=" in arg and not arg.startswith("-"):
            overrides.append(arg)
        else:
            fail(f"unexpected argument {arg!r}; usage: [--config FILE] [--run-dir DIR] [key=value ...]")
    config = {}
    if config_path:
        try:
            with open(config_path, encoding="utf-8") as handle:
                config = json.load(handle)
        except (OSError, ValueError) as error:
            fail(f"cannot read the config {config_path}: {error}")
        if not isinstance(config, dict):
            fail(f"the config {config_path} must hold a JSON object")
    elif not overrides:
        fail("no config: set TMGG_CONFIG to the resolved config.json (the tmgg runners do), "
             "pass --config FILE, or pass the config as key=value arguments")
    for arg in overrides:
        apply_override(config, arg)
    if config.get("seed") is None and os.environ.get("TMGG_SEED"):
        config["seed"] = parse_value(os.environ["TMGG_SEED"])
    if not run_dir:
        fail("no run folder: set TMGG_RUN_DIR (the tmgg runners do) or pass --run-dir DIR")
    try:
        os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
    except OSError as error:
        fail(f"cannot write to the run folder {run_dir}: {error}")
    return config, run_dir, os.environ.get("TMGG_RUN_ID", "adhoc")


class Settings:
    """Typed reads from the config; every problem is collected, then reported at once."""

    def __init__(self, config):
        self.config = config
        self.problems = []

    def get(self, key, kind, low=None, high=None, default=None, choices=None):
        node = self.config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            if default is not None:
                return default
            self.problems.append(f"{key} is missing")
            return None
        ok = True
        if choices is not None:
            ok = node in choices
            wanted = "one of " + ", ".join(map(str, choices))
        else:
            wanted = "an integer" if kind is int else "a number"
            if low is not None:
                wanted += f" from {low}" + (f" to {high}" if high is not None else "")
            if isinstance(node, bool) or not isinstance(node, (int, float)):
                ok = False
            elif kind is int and not float(node).is_integer():
                ok = False
            elif not math.isfinite(node) or (low is not None and node < low) or (high is not None and node > high):
                ok = False
            else:
                node = kind(node)
        if not ok:
            self.problems.append(f"{key} must be {wanted} (got {json.dumps(node)})")
        return node

    def check(self, where):
        if self.problems:
            fail(f"invalid config {where}:\n" + "\n".join(f"  - {p}" for p in self.problems)
                 + "\nfix it in examples/python/configs/ or the stage's hyperparameter_space")


def write_json(path, value):
    """Writes JSON atomically (a reader never sees half a file)."""
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2)
        handle.write("\n")
    os.replace(path + ".tmp", path)


def append_progress(run_dir, line):
    with open(os.path.join(run_dir, "metrics.jsonl"), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


def write_metrics(run_dir, metrics):
    for key, value in metrics.items():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            fail(f"metric {key} is {value!r}, not a finite number; lower learning_rate?", code=1)
    write_json(os.path.join(run_dir, "metrics.json"), metrics)
