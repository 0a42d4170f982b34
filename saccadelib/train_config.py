"""The training settings: one typed config and its checks. A leaf: it imports no model and no data set
(``saccadelib.settings`` resolves a run's settings and says which of them name it)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .names import check_task

OPTIMIZERS = ("adam", "adamw")  # train.OPTIMIZER_CLASSES builds them


@dataclass(frozen=True)
class TrainConfig:
    task: str = "identification"  # sum, identification, megapixel_majority|max|top or fivek (docs/tasks.md)
    epochs: int = 30
    train_size: int = 20_000  # canvases per epoch: fresh ones (generated tasks), at most the split (stored sets)
    batch_size: int = 128
    lr: float = 1e-3
    # "constant"; "cosine" (from lr down to lr/100 over `epochs`); or "plateau": lr divided by 10 at each
    # plateau of validation accuracy (the plateau rule below), lr_decays times, then stop at the next one
    lr_schedule: str = "constant"
    lr_decays: int = 2
    # Epochs at the start with the policy frozen, for models that name their parts (``parameter_groups``:
    # the reader that classifies the crops, the policy that decides where to look; their learning rates are
    # the model's settings), so the reader learns on the start windows first.
    policy_warmup_epochs: int = 0
    weight_decay: float = 0.0
    # "adam": weight decay added to the gradient (L2); "adamw": decoupled from it (Loshchilov & Hutter), as
    # IPS trains on Megapixel MNIST (weight decay 0.1)
    optimizer: str = "adam"
    clip_norm: float | None = 10.0
    clip_value: float | None = None  # the original clipped gradients by value at 0.25
    seed: int = 0
    threads: int | None = None  # torch threads (None: leave as is)
    workers: int = 0  # DataLoader workers generating canvases or reading image files ahead
    val_size: int = 10_000  # first val_size canvases of the fixed validation set
    eval_batch_size: int = 500
    time_budget_s: float | None = None  # do not start an epoch that would end past this training time (a cap)
    # The plateau rule (schedule.plateaus; None epochs: no rule). plateau_test "margin": a plateau is
    # plateau_epochs epochs in a row without a rise of plateau_margin (absolute, 0.002 = 0.2 points) above the
    # last such rise; "slope": plateau_epochs epochs whose least-squares line does not rise by plateau_margin
    # beyond two standard errors (a decision on the trend, which epoch-to-epoch noise does not trip).
    plateau_epochs: int | None = None
    plateau_margin: float = 0.002
    plateau_test: str = "margin"
    progress: str = "log"  # "bar" (tqdm), "log" (a line per epoch), "none"
    test: bool = True  # score the best-on-validation weights on the test set at the end
    test_size: int | None = None  # first test_size canvases of the fixed test set (None: all 10,000)
    device: str = "cpu"  # "cpu", "cuda", "cuda:N", or "auto" (the GPU when there is one)
    precision: str = "fp32"  # "fp32", or "bf16" (autocast: matmuls and convs in bfloat16, on a GPU or a CPU with bf16 units)
    channels_last: bool = True  # convolutions in NHWC memory layout (1.1-1.3× on our CPU, docs/efficiency.md)
    compile: bool = False  # torch.compile the model (compiles on the first steps; pays on long runs)
    data_root: str | None = None  # a task read from files (fivek, megapixel_*, folder): its folder (default under data/)
    manifest: str | None = None  # task folder: a file,label[,split] CSV listing the images (default: subfolders per class)
    convert_channels: bool = False  # task folder: convert images to the model's channels (colour→luma, grey→RGB), not refuse them
    # The side the model reads two-digit canvases at: their own side (canvas_side; None says the same) as
    # generated, a larger N as each canvas's lazy N×N upsample (the paper's 2528²)
    image_side: int | None = None
    canvas_side: int = 100  # two-digit tasks: the canvas the native-size digits are pasted on (100: the paper's)

    def __post_init__(self):
        check_task(self.task)
        for name, low in (("epochs", 1), ("train_size", 1), ("batch_size", 1), ("val_size", 1),
                          ("eval_batch_size", 1), ("workers", 0), ("canvas_side", 28), ("lr_decays", 0),
                          ("policy_warmup_epochs", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"setting {name} must be at least {low}, got {getattr(self, name)}")
        if self.plateau_margin < 0:
            raise ValueError(f"setting plateau_margin must be at least 0, got {self.plateau_margin}")
        for name in ("test_size", "threads", "plateau_epochs"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"setting {name} must be at least 1 (or unset), got {getattr(self, name)}")
        for name in ("lr", "clip_norm", "clip_value", "time_budget_s", "weight_decay", "plateau_margin"):
            if getattr(self, name) is not None and not math.isfinite(getattr(self, name)):
                raise ValueError(f"setting {name} must be a finite number, got {getattr(self, name)}")
        for name in ("lr", "clip_norm", "clip_value", "time_budget_s"):
            if getattr(self, name) is not None and not getattr(self, name) > 0:
                raise ValueError(f"setting {name} must be positive{'' if name == 'lr' else ' (or unset)'}, "
                                 f"got {getattr(self, name)}")
        if self.lr_schedule == "plateau" and not self.plateau_epochs:
            raise ValueError("lr_schedule=plateau needs plateau_epochs (the epochs without a rise that make a plateau)")
        if self.weight_decay < 0:
            raise ValueError(f"setting weight_decay must be at least 0, got {self.weight_decay}")
        if self.image_side is not None and self.image_side < 8:
            raise ValueError(f"image_side must be at least 8 pixels or None, got {self.image_side}")
        if self.image_side == self.canvas_side:  # one spelling of "no upsampling" in what a run records
            object.__setattr__(self, "image_side", None)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"unknown precision {self.precision!r}; valid: fp32, bf16")
        if not (self.device in ("cpu", "auto") or self.device.startswith("cuda")):
            raise ValueError(f"unknown device {self.device!r}; valid: cpu, cuda, cuda:N, auto")
        if self.lr_schedule not in ("constant", "cosine", "plateau"):
            raise ValueError(f"unknown lr schedule {self.lr_schedule!r}; valid: constant, cosine, plateau")
        if self.plateau_test not in ("margin", "slope"):
            raise ValueError(f"unknown plateau test {self.plateau_test!r}; valid: margin, slope")
        if self.plateau_test == "slope" and self.plateau_epochs is not None and self.plateau_epochs < 3:
            raise ValueError(f"plateau_test=slope fits a line through plateau_epochs epochs: give at least 3, "
                             f"got {self.plateau_epochs}")
        if self.progress not in ("bar", "log", "none"):
            raise ValueError(f"unknown progress mode {self.progress!r}; valid: bar, log, none")
