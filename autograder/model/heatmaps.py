"""Attention heatmaps as PNG files: reference | student | difference, tokens on both axes.

Draws through matplotlib's Agg canvas directly (no pyplot, no display, no global backend switch), so it
is safe in headless graders and worker threads.

Speed: one figure serves every head of a comparison. Its axes, token labels and colorbars are built,
laid out (constrained layout, then frozen) and drawn once; each head then draws only its three images,
the difference colorbar and the title over that background (blitting) and saves the pixels. About
0.02 s a head instead of ~0.3 s for a new figure per head (6 tokens, one core). The figure of a token list
is kept for the process (`shared_figure`). A grade draws its pictures in a forked child
(`render_in_background`), on the other core, while its other checks run.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple

import numpy
import PIL.Image
import torch
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

if TYPE_CHECKING:
    from autograder.model.compare import ModelComparison

DPI = 80


def _label(token: str) -> str:
    shown = token.replace("\n", "\\n").strip()
    return shown if shown else repr(token)


def _as_map(weights: Tensor) -> Tensor:
    weights = weights.detach().double().cpu()
    return weights.squeeze(0) if weights.dim() == 3 and weights.shape[0] == 1 else weights


class HeatmapFigure:
    """One reusable three-panel figure for `[S_q, S_k]` maps over the same tokens.

    tokens: S_k key labels (also the query labels when S_q == S_k, else the queries are numbered).
    `render(reference, student, path, suptitle)` writes one PNG. Everything that is the same for every
    map (axes, token labels, panel titles, the two 0..1 colorbars) is laid out and drawn once into a
    background; a render restores it and draws only what changes: the three images, the difference
    colorbar (its scale follows each map) and the title.
    """

    def __init__(self, tokens: Sequence[str], seq_q: int, titles: Tuple[str, str] = ("reference", "student")):
        keys = [_label(t) for t in tokens]
        queries = keys if seq_q == len(keys) else [str(i) for i in range(seq_q)]
        self.shape = (seq_q, len(keys))
        size = max(3.0, 0.35 * len(keys) + 1.5)
        self.fig = Figure(figsize=(3 * size + 1.5, size + 0.8), dpi=DPI, layout="constrained")
        self.canvas = FigureCanvasAgg(self.fig)
        blank = torch.zeros(self.shape).numpy()
        panels = (
            (titles[0], dict(cmap="viridis", vmin=0.0, vmax=1.0)),
            (titles[1], dict(cmap="viridis", vmin=0.0, vmax=1.0)),
            (f"{titles[1]} - {titles[0]}", dict(cmap="RdBu_r", vmin=-1.0, vmax=1.0)),
        )
        self.images, self.axes = [], []
        for i, (title, style) in enumerate(panels):
            ax = self.fig.add_subplot(1, 3, i + 1)
            image = ax.imshow(blank, aspect="equal", interpolation="nearest", **style)
            ax.set_title(title)
            ax.set_xticks(range(len(keys)), keys, rotation=90, fontsize=8)
            ax.set_yticks(range(len(queries)), queries, fontsize=8)
            ax.set_xlabel("key")
            ax.set_ylabel("query")
            self.diff_colorbar = self.fig.colorbar(image, ax=ax, shrink=0.8)
            self.images.append(image)
            self.axes.append(ax)
        # a placeholder title and wide difference ticks reserve their room, then the layout is frozen
        self.title = self.fig.suptitle("placeholder title, block 00, head 00")
        self.images[2].set_clim(-0.00088, 0.00088)
        self.fig.draw_without_rendering()  # runs the constrained layout once
        with rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            self.fig.set_layout_engine(None)  # keep those positions from now on
        self.changing = [*self.images, self.diff_colorbar.ax, self.title]
        for artist in self.changing:
            artist.set_animated(True)  # left out of the background
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    def render(self, reference_weights: Tensor, student_weights: Tensor, path: Path | str,
               suptitle: Optional[str] = None) -> Path:
        ref, stu = _as_map(reference_weights), _as_map(student_weights)
        if ref.dim() != 2 or ref.shape != stu.shape or tuple(ref.shape) != self.shape:
            raise ValueError(f"expected two {list(self.shape)} maps, got {list(ref.shape)} and {list(stu.shape)}")
        diff = torch.nan_to_num(stu - ref)
        bound = max(float(diff.abs().max()), 1e-6)
        for image, data in zip(self.images, (ref, stu, diff)):
            image.set_data(data.numpy())
        self.images[2].set_clim(-bound, bound)  # the difference colorbar follows
        self.title.set_text(suptitle or "")
        self.canvas.restore_region(self.background)
        for ax, image in zip(self.axes, self.images):
            ax.draw_artist(image)
            for spine in ax.spines.values():  # the frame goes over the image, as in a full draw
                ax.draw_artist(spine)
        self.fig.draw_artist(self.diff_colorbar.ax)
        self.fig.draw_artist(self.title)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = PIL.Image.fromarray(numpy.asarray(self.canvas.buffer_rgba()))
        pixels.save(path, format="png", dpi=(DPI, DPI), compress_level=1)  # level 6 takes 3x as long
        return path


@functools.lru_cache(maxsize=4)
def shared_figure(tokens: Tuple[str, ...], seq_q: int, titles: Tuple[str, str]) -> HeatmapFigure:
    """One figure per token list, kept for the process: repeated grades of the same prompt in one process
    skip building and laying it out (~0.1 s; 1.5 s on a loaded machine)."""
    return HeatmapFigure(tokens, seq_q, titles)


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
    ref = _as_map(reference_weights)
    if ref.dim() != 2:
        raise ValueError(f"expected [S_q, S_k] maps, got {list(ref.shape)}")
    return HeatmapFigure(tokens, ref.shape[0], titles).render(ref, student_weights, path, suptitle)


def _real_maps(comparison: "ModelComparison", batch_index: int) -> Tuple[List[str], Tensor, Tensor]:
    """Prompt `batch_index`'s tokens and its production and student maps `[H, S_real, S_real]`, padding dropped."""
    real = comparison.padding_mask[batch_index]  # [S] bool, True = real token
    tokens = [t for t, keep in zip(comparison.tokens[batch_index], real.tolist()) if keep]
    ref = comparison.reference_weights[batch_index][:, real][:, :, real]
    stu = comparison.student_weights[batch_index][:, real][:, :, real]
    return tokens, ref, stu


def _comparison_figure(tokens: Sequence[str], ref: Tensor) -> HeatmapFigure:
    return shared_figure(tuple(tokens), int(ref.shape[1]), ("production", "student"))


def visualize_model_comparison(
    comparison: "ModelComparison",
    out_dir: Path | str,
    prefix: str = "",
    heads: Optional[Sequence[int]] = None,
    batch_index: int = 0,
) -> List[Path]:
    """One PNG per head (all heads unless `heads` is given): production | student | difference.

    Uses the raw maps kept on the comparison (`[B, H, S, S]`) for prompt `batch_index`, padding dropped.
    Files are named `{prefix}layer{L}_head{h:02d}.png`. One figure is drawn for all of them.
    """
    tokens, ref, stu = _real_maps(comparison, batch_index)
    out_dir = Path(out_dir)
    figure = _comparison_figure(tokens, ref)
    return [
        figure.render(ref[head], stu[head], out_dir / f"{prefix}layer{comparison.layer_idx}_head{head:02d}.png",
                      suptitle=f"{comparison.model_name}, block {comparison.layer_idx}, head {head}")
        for head in (range(ref.shape[0]) if heads is None else heads)
    ]


_warm_process = False


def build_figures_before_forking() -> None:
    """For a warm process that forks its grades (batch, watch): `render_in_background` builds the figure
    (0.3-0.7 s) in the calling process, so that the warm-up grade builds it once and every grade forked
    afterwards only renders (~0.05 s a head). A one-shot grade builds it in the child, on the other core."""
    global _warm_process
    _warm_process = True


def render_in_background(comparison: "ModelComparison", out_dir: Path | str) -> Callable[[], List[Path]]:
    """`visualize_model_comparison(comparison, out_dir)` in a forked child, while the caller goes on grading
    (the other core draws the pictures); returns `finish()`, which waits for the child and returns the
    paths, or raises RuntimeError when it failed. Where there is no fork, it draws them here and now.

    The child only draws and writes files, then leaves with os._exit (no atexit handlers, no buffers of
    the grader flushed twice); everything it uses (matplotlib, the figure) is imported before the fork.
    """
    if not hasattr(os, "fork"):
        paths = visualize_model_comparison(comparison, out_dir)
        return lambda: paths
    PIL.Image.preinit()  # the PNG plugin, which the first save would import: imported before the fork
    if _warm_process:
        tokens, ref, _ = _real_maps(comparison, 0)
        _comparison_figure(tokens, ref)

    heads = comparison.reference_weights.shape[1]
    paths = [Path(out_dir) / f"layer{comparison.layer_idx}_head{head:02d}.png" for head in range(heads)]
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            visualize_model_comparison(comparison, out_dir)
            code = 0
        except BaseException:  # noqa: BLE001 - the parent says the pictures failed
            pass
        finally:
            os._exit(code)

    def finish() -> List[Path]:
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise RuntimeError(f"drawing the heatmaps failed (exit code {code})")
        return paths

    return finish
