"""Attention heatmaps as PNG files: reference | student | difference, tokens on both axes.

Drawn with Pillow: each panel is the map's cells coloured through matplotlib's colormaps (viridis for
weights on 0..1, RdBu_r for the difference on -b..b, b its largest |difference|), with the tokens as tick
labels, a colorbar and a title. Only matplotlib's colormaps are imported, not its figure machinery (~0.4 s
to import and ~0.3-0.7 s to lay out a figure): a figure takes ~7 ms to build and a head ~10 ms to draw.

One figure serves every head of a comparison: the labels, titles and the two 0..1 colorbars are drawn
once into a background (`HeatmapFigure`), and each head pastes its three maps, the difference colorbar's
scale and the title onto a copy. A grade draws its pictures in a forked child (`render_in_background`), on
the other core.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple

import numpy
import PIL.Image
import torch
from matplotlib import colormaps
from PIL import ImageDraw, ImageFont
from torch import Tensor

if TYPE_CHECKING:
    from autograder.model.compare import ModelComparison

DPI = 80
BAR = 14          # colorbar width, pixels
GAP = 10          # space between the parts of a panel, pixels
SMALL, LARGE = 11, 14    # font sizes: labels, titles
NAN_RGB = (255, 0, 255)  # a NaN weight, drawn in a colour no colormap uses


def _label(token: str) -> str:
    shown = token.replace("\n", "\\n").strip()
    return shown if shown else repr(token)


def _as_map(weights: Tensor) -> Tensor:
    weights = weights.detach().double().cpu()
    return weights.squeeze(0) if weights.dim() == 3 and weights.shape[0] == 1 else weights


@functools.lru_cache(maxsize=2)
def _lut(name: str) -> numpy.ndarray:
    """The colormap as 256 RGB rows, uint8."""
    return (colormaps[name](numpy.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(numpy.uint8)


@functools.lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _load_drawing_tools() -> None:
    """Fill the caches of what drawing uses: the two colour tables and the two fonts."""
    for cmap in ("viridis", "RdBu_r"):
        _lut(cmap)
    for size in (SMALL, LARGE):
        _font(size)


def _cells(values: numpy.ndarray, cmap: str, low: float, high: float, cell: int) -> PIL.Image.Image:
    """`values [S_q, S_k]` as an image of `cell`-pixel squares coloured on low..high (NaN: NAN_RGB)."""
    scaled = numpy.clip((values - low) / (high - low), 0.0, 1.0)
    index = numpy.nan_to_num(scaled * 255, nan=0.0).round().astype(numpy.intp)
    rgb = _lut(cmap)[index]
    rgb[numpy.isnan(values)] = NAN_RGB
    return PIL.Image.fromarray(rgb, "RGB").resize((values.shape[1] * cell, values.shape[0] * cell),
                                                  PIL.Image.Resampling.NEAREST)


def _text_width(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    return int(font.getlength(text)) + 1


class HeatmapFigure:
    """One reusable three-panel figure for `[S_q, S_k]` maps over the same tokens.

    tokens: S_k key labels (also the query labels when S_q == S_k, else the queries are numbered).
    `render(reference, student, path, suptitle)` writes one PNG. Everything that is the same for every
    map (token labels, panel titles, axis names, the two 0..1 colorbars) is drawn once into `background`;
    a render pastes the three maps, the difference colorbar's labels and the title onto a copy.
    """

    def __init__(self, tokens: Sequence[str], seq_q: int, titles: Tuple[str, str] = ("reference", "student")):
        keys = [_label(t) for t in tokens]
        queries = keys if seq_q == len(keys) else [str(i) for i in range(seq_q)]
        self.shape = (seq_q, len(keys))
        self.cell = max(12, min(32, 360 // max(self.shape)))
        self.small, self.large = _font(SMALL), _font(LARGE)
        y_room = max(_text_width(q, self.small) for q in queries) + GAP + 14  # + the "query" label
        x_room = max(_text_width(k, self.small) for k in keys) + GAP + 14     # rotated, + "key"
        bar_room = BAR + 6 + _text_width("-0.00088", self.small)
        grid_w, grid_h = len(keys) * self.cell, seq_q * self.cell
        self.panel_w = y_room + grid_w + GAP + bar_room + 2 * GAP
        self.top = 30 + 22  # the title, then each panel's name
        width, height = 3 * self.panel_w, self.top + grid_h + x_room + GAP
        self.background = PIL.Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(self.background)
        names = (titles[0], titles[1], f"{titles[1]} - {titles[0]}")
        self.origins = []
        for panel, name in enumerate(names):
            x0 = panel * self.panel_w + y_room
            self.origins.append((x0, self.top))
            draw.text((x0 + grid_w / 2, self.top - 6), name, fill="black", font=self.large, anchor="md")
            for row, query in enumerate(queries):
                draw.text((x0 - GAP / 2, self.top + (row + 0.5) * self.cell), query, fill="black",
                          font=self.small, anchor="rm")
            for column, key in enumerate(keys):
                self._vertical(key, x0 + (column + 0.5) * self.cell, self.top + grid_h + GAP / 2)
            draw.text((x0 + grid_w / 2, height - 4), "key", fill="black", font=self.small, anchor="md")
            label = self._rotated("query")
            self.background.paste(label, (panel * self.panel_w + 2, self.top + grid_h // 2 - label.height // 2),
                                  label)
            draw.rectangle([x0 - 1, self.top - 1, x0 + grid_w, self.top + grid_h], outline="black")
        self.bar_x = [x0 + grid_w + GAP for x0, _ in self.origins]
        for panel in (0, 1):
            self._colorbar(self.background, panel, "viridis", 0.0, 1.0)

    def _rotated(self, text: str) -> PIL.Image.Image:
        """`text` on a transparent strip turned a quarter turn (it reads bottom to top)."""
        label = PIL.Image.new("RGBA", (_text_width(text, self.small) + 4, 16), (255, 255, 255, 0))
        ImageDraw.Draw(label).text((2, 0), text, fill="black", font=self.small)
        return label.rotate(90, expand=True)

    def _vertical(self, text: str, x: float, y: float) -> None:
        """A key's label below the grid, centred on x, from y down."""
        label = self._rotated(text)
        self.background.paste(label, (int(x - label.width / 2), int(y)), label)

    def _colorbar(self, picture: PIL.Image.Image, panel: int, cmap: str, low: float, high: float) -> None:
        grid_h = self.shape[0] * self.cell
        x, y = self.bar_x[panel], self.top
        ramp = numpy.linspace(high, low, grid_h)[:, None].repeat(BAR, axis=1)
        picture.paste(_cells(ramp, cmap, low, high, 1), (x, y))
        draw = ImageDraw.Draw(picture)
        draw.rectangle([x - 1, y - 1, x + BAR, y + grid_h], outline="black")
        for value, at in ((high, y), ((low + high) / 2, y + grid_h / 2), (low, y + grid_h)):
            draw.text((x + BAR + 4, at), f"{value:.3g}", fill="black", font=self.small, anchor="lm")

    def render(self, reference_weights: Tensor, student_weights: Tensor, path: Path | str,
               suptitle: Optional[str] = None) -> Path:
        ref, stu = _as_map(reference_weights), _as_map(student_weights)
        if ref.dim() != 2 or ref.shape != stu.shape or tuple(ref.shape) != self.shape:
            raise ValueError(f"expected two {list(self.shape)} maps, got {list(ref.shape)} and {list(stu.shape)}")
        diff = torch.nan_to_num(stu - ref)
        bound = max(float(diff.abs().max()), 1e-6)
        picture = self.background.copy()
        maps = ((ref, "viridis", 0.0, 1.0), (stu, "viridis", 0.0, 1.0), (diff, "RdBu_r", -bound, bound))
        for (x0, y0), (values, cmap, low, high) in zip(self.origins, maps):
            picture.paste(_cells(values.numpy(), cmap, low, high, self.cell), (x0, y0))
        self._colorbar(picture, 2, "RdBu_r", -bound, bound)
        ImageDraw.Draw(picture).text((picture.width / 2, 8), suptitle or "", fill="black", font=self.large, anchor="mt")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path, format="png", dpi=(DPI, DPI), compress_level=1)  # level 6 takes 3x as long
        return path


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
    figure = HeatmapFigure(tokens, int(ref.shape[1]), ("production", "student"))
    return [
        figure.render(ref[head], stu[head], out_dir / f"{prefix}layer{comparison.layer_idx}_head{head:02d}.png",
                      suptitle=f"{comparison.model_name}, block {comparison.layer_idx}, head {head}")
        for head in (range(ref.shape[0]) if heads is None else heads)
    ]


def render_in_background(comparison: "ModelComparison", out_dir: Path | str) -> Callable[[], List[Path]]:
    """`visualize_model_comparison(comparison, out_dir)` in a forked child, while the caller goes on grading
    (the other core draws the pictures); returns `finish()`, which waits for the child and returns the
    paths, or raises RuntimeError when it failed. Where there is no fork, it draws them here and now.

    The child only draws and writes files, then leaves with os._exit (no atexit handlers, no buffers of
    the grader flushed twice); what it uses (the PNG plugin, the colour tables, the fonts) is loaded before
    the fork, so that a warm process (batch, watch) loads it once for all its grades.
    """
    if not hasattr(os, "fork"):
        paths = visualize_model_comparison(comparison, out_dir)
        return lambda: paths
    PIL.Image.preinit()  # the PNG plugin, which the first save would import
    _load_drawing_tools()

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
