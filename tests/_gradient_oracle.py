"""The gradient summary's sentences computed by hand from `conflict.jsonl` records: numpy over the raw records
(the ratio from the two norms), independent of `hf_xalign.conflict.summarize` and of the renderer."""

from __future__ import annotations

import json

import numpy as np


def expected_gradient_lines(records: list[dict], cell: str | None = None) -> list[str]:
    """The sentences every page must show for a cell whose `conflict.jsonl` holds `records`."""
    of = f" ({cell})" if cell else ""
    kept = [r for r in records if not r.get("skipped")]
    cosines = np.array([r["cosine"] for r in kept if r["cosine"] is not None])
    ratios = np.array([r["align_norm"] / r["task_norm"] for r in kept if r["task_norm"]])
    skipped = len(records) - len(kept)
    lines = [
        f"Task vs alignment gradient cosine{of}: mean {cosines.mean():+.4f}, median {np.median(cosines):+.4f} "
        f"over {len(kept)} measured steps"
        + (f" ({skipped} more skipped: non-finite gradients)" if skipped else "")
        + f"; |cosine| < 0.1 at {np.mean(np.abs(cosines) < 0.1):.0%} of them, negative at {np.mean(cosines < 0):.0%} "
        "(near 0: the two objectives barely interact).",
        f"‖align grad‖ / ‖task grad‖{of}: median {np.median(ratios):.3f} over the steps (from {ratios.min():.3f} to "
        f"{ratios.max():.3f}).",
    ]
    layers = {}
    for group in kept[0]["per_group"]:
        values = [r["per_group"][group]["cosine"] for r in kept if r["per_group"][group]["cosine"] is not None]
        if group.startswith("layer.") and values:
            layers[int(group.split(".")[1])] = float(np.mean(values))
    if len(layers) >= 2:
        low, high = min(layers, key=layers.get), max(layers, key=layers.get)
        lines.append(
            f"Per layer{of}, the mean cosine is lowest at layer {low} ({layers[low]:+.4f}) and highest at layer "
            f"{high} ({layers[high]:+.4f})."
        )
    return lines


def read_records(path) -> list[dict]:
    """The records of a `conflict.jsonl`."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
