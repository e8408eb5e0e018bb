"""Pictures of masks: colourising, overlays on the image, legends."""

from __future__ import annotations

import numpy as np

from seglib import labels, masks

__all__ = ["colorize_categories", "colorize_label_ids", "overlay", "legend_handles", "show_row", "plot_confusion"]


def colorize_categories(categories: np.ndarray) -> np.ndarray:
    """``categories: (H, W)`` category ids 0..7 or IGNORE -> ``(H, W, 3) uint8`` RGB (IGNORE in
    ``labels.IGNORE_COLOR``, white)."""
    return np.take(labels.CATEGORY_PALETTE_256, masks.check_categories(categories), axis=0)


def colorize_label_ids(label_ids: np.ndarray) -> np.ndarray:
    """``label_ids: (H, W)`` label ids 0..33 -> ``(H, W, 3) uint8`` in the official colours."""
    return masks.label_ids_to_color(label_ids)


def overlay(image: np.ndarray, mask_rgb: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend ``mask_rgb: (H, W, 3) uint8`` over ``image: (H, W, 3) uint8``; ``alpha`` is the mask's weight."""
    image, mask_rgb = np.asarray(image), np.asarray(mask_rgb)
    if image.shape != mask_rgb.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image and mask_rgb must both be (H, W, 3), got {image.shape} and {mask_rgb.shape}")
    if image.dtype != np.uint8 or mask_rgb.dtype != np.uint8:
        raise ValueError(f"image and mask_rgb must be uint8 (0..255), got {image.dtype} and {mask_rgb.dtype}; "
                         "convert a model input in [0, 1] with seglib.modelio.from_model_input")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * mask_rgb.astype(np.float32)
    return np.round(blended).astype(np.uint8)


def legend_handles(kind: str = "categories") -> list:
    """Matplotlib patches for a legend: one per category (``"categories"``) or per label id (``"labels"``)."""
    from matplotlib.patches import Patch

    if kind == "categories":
        entries = [(c.name, c.color) for c in labels.CATEGORIES]
    elif kind == "labels":
        entries = [(label.name, label.color) for label in labels.LABELS if label.id >= 0]
    else:
        raise ValueError(f"kind must be 'categories' or 'labels', got {kind!r}")
    return [Patch(facecolor=np.array(color) / 255, edgecolor="black", label=name) for name, color in entries]


def show_row(panels: dict[str, np.ndarray], legend: str | None = "categories", width: float = 15.0):
    """Show images side by side with titles (``{title: (H, W, 3) or (H, W) array}``) and an optional legend.

    2-D ``uint8`` and ``bool`` panels are drawn in grey on their full range (0 black, 255 or True white), so
    small label ids look as dark as they are; other 2-D panels are stretched from their minimum to maximum.

    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    if not panels:
        raise ValueError("show_row needs at least one panel")
    height, width_px = next(iter(panels.values())).shape[:2]
    figure, axes = plt.subplots(1, len(panels), figsize=(width, width / len(panels) * height / width_px + 0.8),
                                squeeze=False)
    for axis, (title, panel) in zip(axes[0], panels.items()):
        grey_range = {np.dtype(bool): (0, 1), np.dtype(np.uint8): (0, 255)}.get(panel.dtype, (None, None))
        axis.imshow(panel, cmap="gray" if panel.ndim == 2 else None, interpolation="nearest",
                    vmin=grey_range[0], vmax=grey_range[1])
        axis.set_title(title)
        axis.axis("off")
    if legend:
        handles = legend_handles(legend)
        figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), frameon=False)
        figure.subplots_adjust(bottom=0.15)
    return figure


def plot_confusion(matrix: np.ndarray, names: tuple[str, ...] | list[str] = labels.CATEGORY_NAMES, axis=None,
                   title: str = "", colorbar: bool = True, fontsize: float | None = None):
    """Draw a confusion matrix as a heatmap, each row normalised to the true class's pixels.

    ``matrix``: ``(K, K)`` pixel counts, any integer or float dtype (``metrics.confusion_matrix`` gives int64),
    ``matrix[i, j]`` = pixels of true class ``i`` predicted as ``j``. ``names``: the ``K`` class names, for both
    axes (default the 8 categories). Each row is divided by its sum, so the picture shows ``(K, K) float64`` shares
    in [0, 1] (rows = truth, columns = prediction, colour scale fixed to 0..1); a row with no pixels stays 0.

    Draws on ``axis`` if given, else on a new 6.5×5.5-inch figure; ``title`` goes above, ``colorbar`` adds a colour
    bar beside the axis, ``fontsize`` sets the tick and axis labels' size (small panels side by side). Returns the
    matplotlib axis (its figure is ``axis.figure``; the shares drawn are ``axis.images[-1].get_array()``).
    """
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be square (K, K), got shape {matrix.shape}")
    if len(names) != matrix.shape[0]:
        raise ValueError(f"names has {len(names)} entries for a {matrix.shape[0]}x{matrix.shape[1]} matrix")
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    if axis is None:
        _, axis = plt.subplots(figsize=(6.5, 5.5))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ticks = range(len(names))
    axis.set_xticks(ticks, names, rotation=45, ha="right", fontsize=fontsize)
    axis.set_yticks(ticks, names, fontsize=fontsize)
    axis.set_xlabel("predicted", fontsize=fontsize)
    axis.set_ylabel("true", fontsize=fontsize)
    if title:
        axis.set_title(title)
    if colorbar:
        axis.figure.colorbar(image, ax=axis, label="share of the true category's pixels")
    return axis


