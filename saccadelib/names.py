"""The names a user types and the limits a user is told, without importing torch: the command line's help
and its errors read them before any model or data set is loaded. Each list mirrors the table that builds
what it names (``registry.REGISTRY``, ``tasks.get_task``, ``recipes.RECIPES``; a test checks they agree)."""
from __future__ import annotations

from .recipes import RECIPES

# registry.REGISTRY's entries, in its order, by kind
METHODS = ("saccade", "saccade_cells")
CONTROLS = ("random_glimpses", "grid_glimpses", "salient_glimpses", "oracle_glimpses", "deterministic_glimpses")
BASELINES = ("resnet18", "resnet18_downsampled", "resnet18_tiles", "proxy_cnn", "ram", "attention_sampling", "ips")
MODELS = METHODS + CONTROLS + BASELINES

TWO_DIGIT_TASKS = ("sum", "identification")
MEGAPIXEL_LABELS = ("majority", "max", "top", "multi")  # multi: the set of classes present (multi-label)
MEGAPIXEL_DECOYS = ("blobs", "lookalikes")  # datasets.megapixel_decoys.KINDS beside "none"
MEGAPIXEL_TASKS = tuple(f"megapixel_{decoys}{label}" for decoys in ("", *(f"{d}_" for d in MEGAPIXEL_DECOYS))
                        for label in MEGAPIXEL_LABELS)
TASKS = (*TWO_DIGIT_TASKS, *MEGAPIXEL_TASKS, "fivek", "folder")

RECIPE_NAMES = tuple(RECIPES)

# Pillow refuses images above about 179 million pixels (a guard against decompression bombs) with a long
# traceback. This library reads large images on purpose, so it applies its own, stated limit instead: large
# enough for an 8192 × 8192 photo, raised per call (``max_pixels``, ``--max-pixels``).
MAX_PIXELS = 8192 * 8192

MODEL_HELP = (f"{METHODS[0]} (default: the paper's method), {METHODS[1]} (our cells variant), the controls "
              f"{', '.join(CONTROLS)}, or the baselines {', '.join(BASELINES)} (docs/training.md)")
TASK_HELP = ("sum, identification, megapixel_majority|max|top|multi (with decoys: megapixel_blobs_LABEL, "
             "megapixel_lookalikes_LABEL), fivek or folder (docs/tasks.md)")


def megapixel_decoys(task: str) -> str:
    """The decoys of a Megapixel MNIST task (``megapixel_blobs_majority`` → ``blobs``), "none" for a plain one."""
    kind = task.removeprefix("megapixel_").rpartition("_")[0]
    return kind if kind in MEGAPIXEL_DECOYS else "none"


def multilabel(task: str) -> bool:
    """Whether a task's label is a set of classes (its models score each class apart) rather than one."""
    return task in MEGAPIXEL_TASKS and task.endswith("_multi")


def check_task(name: str) -> str:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return name


def check_model(name: str) -> str:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    return name
