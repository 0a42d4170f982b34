"""A fixed set's card (what the set is, its content hash and histograms), recorded under reference/ and
checked every time the set is built: a changed MNIST download or generator never passes unnoticed."""
from __future__ import annotations

import json
from pathlib import Path

from ..runinfo import write_json


def record_cards(cards: list[dict], path: Path) -> None:
    write_json(path, {"definition": "docs/tasks.md", "sets": cards})


def check_cards(cards: list[dict], path: Path, key: tuple[str, ...], record_command: str, fix: str) -> None:
    """Raise naming the first set whose card differs from the one recorded at ``path`` (cards matched by
    their ``key`` fields); ``record_command`` writes them, ``fix`` says what to do when one differs."""
    if not path.exists():
        raise FileNotFoundError(f"no recorded set hashes at {path}; write them with `{record_command}`")
    recorded = {tuple(c[k] for k in key): c for c in json.loads(path.read_text())["sets"]}
    for card in cards:
        which = tuple(card[k] for k in key)
        name = "/".join(str(part) for part in which)
        if which not in recorded:
            raise ValueError(f"{path.name} has no card for {name}; record it with `{record_command}`")
        if recorded[which] != card:
            changed = sorted(k for k in card if recorded[which].get(k) != card[k])
            raise ValueError(f"the fixed {name} set differs from {path.name} ({', '.join(changed)}): {fix}, or, if "
                             f"the definition changed on purpose, `{record_command}`")
