"""Attention heatmaps as PNG files: reference | student | difference, tokens on both axes.

Draws through matplotlib's Agg canvas directly (no pyplot, no display, no global backend switch), so it
is safe in headless graders and worker threads.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

if TYPE_CHECKING:
    from autograder.model_utils import ModelComparison


def _label(token: str) -> str:
    shown = token.replace("\n", "\\n").strip()
    return shown if shown else repr(token)


def _as_map(weights: Tensor) -> Tensor:
    weights = weights.detach().double().cpu()
    return weights.squeeze(0) if weights.dim() == 3 and weights.shape[0] == 1 else weights


def attention_heatmap_pair(
    reference_weights: Tensor,
    student_weights: Tensor,
    tokens: Sequence[str],
    path: Path | str,
    titles: Tuple[str, str] = ("reference", "student"),
    suptitle: Optional[str] = None,
) -> Path:
    """Write one PNG with three panels: reference | student | student - reference.

    reference_weights, student_weights: `[S_q, S_k]` (a leading dim of size 1 is dropped, e.g. the
    PROMPT_EXAMPLE maps `[1, 6, 6]`); tokens: S_k labels (also used for the queries when S_q == S_k).
    """
    ref, stu = _as_map(reference_weights), _as_map(student_weights)
    if ref.dim() != 2 or ref.shape != stu.shape:
        raise ValueError(f"expected two [S_q, S_k] maps of one shape, got {list(ref.shape)} and {list(stu.shape)}")
    diff = torch.nan_to_num(stu - ref)
    bound = max(float(diff.abs().max()), 1e-6)
    keys = [_label(t) for t in tokens]
    queries = keys if ref.shape[0] == len(keys) else [str(i) for i in range(ref.shape[0])]

    size = max(3.0, 0.35 * len(keys) + 1.5)
    fig = Figure(figsize=(3 * size + 1.5, size + 0.8), layout="constrained")
    FigureCanvasAgg(fig)
    panels = (
        (titles[0], ref.numpy(), dict(cmap="viridis", vmin=0.0, vmax=1.0)),
        (titles[1], stu.numpy(), dict(cmap="viridis", vmin=0.0, vmax=1.0)),
        (f"{titles[1]} - {titles[0]}", diff.numpy(), dict(cmap="RdBu_r", vmin=-bound, vmax=bound)),
    )
    for i, (title, data, style) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        image = ax.imshow(data, aspect="equal", interpolation="nearest", **style)
        ax.set_title(title)
        ax.set_xticks(range(len(keys)), keys, rotation=90, fontsize=8)
        ax.set_yticks(range(len(queries)), queries, fontsize=8)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        fig.colorbar(image, ax=ax, shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


def visualize_model_comparison(
    comparison: "ModelComparison",
    out_dir: Path | str,
    prefix: str = "",
    heads: Optional[Sequence[int]] = None,
    batch_index: int = 0,
) -> List[Path]:
    """One PNG per head (all heads unless `heads` is given): production | student | difference.

    Uses the raw maps kept on the comparison (`[B, H, S, S]`) for prompt `batch_index`, padding dropped.
    Files are named `{prefix}layer{L}_head{h:02d}.png`.
    """
    real = comparison.padding_mask[batch_index]  # [S] bool, True = real token
    tokens = [t for t, keep in zip(comparison.tokens[batch_index], real.tolist()) if keep]
    ref = comparison.reference_weights[batch_index][:, real][:, :, real]  # [H, S_real, S_real]
    stu = comparison.student_weights[batch_index][:, real][:, :, real]
    out_dir = Path(out_dir)
    paths = []
    for head in range(ref.shape[0]) if heads is None else heads:
        paths.append(
            attention_heatmap_pair(
                ref[head],
                stu[head],
                tokens,
                out_dir / f"{prefix}layer{comparison.layer_idx}_head{head:02d}.png",
                titles=("production", "student"),
                suptitle=f"{comparison.model_name}, block {comparison.layer_idx}, head {head}",
            )
        )
    return paths
