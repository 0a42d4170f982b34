"""The sliders' callback of the noisy-proxy notebook (03)."""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..plots import noise_view


class NoiseExplorer:
    """The sliders' callback of 03: for (σ, keep) it shows the proxy at that noise, with the saccades and
    prediction of the model trained at the nearest level, on test image ``index``; it prints one line
    (a marker a browser test can read) and returns the prediction."""

    def __init__(self, models: dict[tuple[float, float], object], dataset, class_names: list[str]):
        if not models:
            raise ValueError("NoiseExplorer needs at least one trained model")
        self.models, self.dataset, self.class_names = models, dataset, class_names

    def nearest(self, sigma: float, keep: float) -> tuple[float, float]:
        return min(self.models, key=lambda level: abs(level[0] - sigma) + abs(level[1] - keep))

    def show(self, sigma: float = 0.0, keep: float = 1.0, index: int = 0, display: bool = True) -> dict:
        if not 0 <= index < len(self.dataset):
            raise ValueError(f"index must be in [0, {len(self.dataset)}), got {index}")
        level = self.nearest(sigma, keep)
        item = self.dataset.as_dict(index, index + 1)
        fig, result = noise_view(self.models[level], item["image"][0], int(item["label"][0]), sigma, keep,
                                 self.class_names)
        result.update({"sigma": sigma, "keep": keep, "index": index, "model_level": list(level)})
        print(f"prediction {result['prediction']} ({result['probability']:.0%}) for test image {index}, "
              f"proxy σ={sigma:g} keep={keep:g}, model trained at σ={level[0]:g} keep={level[1]:g}")
        if display:
            plt.show()
        else:
            plt.close(fig)
        result["figure"] = fig
        return result
