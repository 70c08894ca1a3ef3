"""Renders and figures: contrast-stretched composites and ground-truth maps.

Inputs are (bands, rows, cols) as read by rasterio; images handed to
matplotlib are (rows, cols, 3) uint8, channels last.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

from landcover.files import atomic_write  # noqa: E402
from landcover.legend import ClassInfo  # noqa: E402

log = logging.getLogger(__name__)


def stretch(bands: np.ndarray, valid: np.ndarray, percentiles: tuple[float, float] = (2, 98)) -> np.ndarray:
    """Linear contrast stretch of each band between two percentiles of its valid pixels.

    Args:
        bands: (3, rows, cols) array, e.g. B04, B03, B02 for true colour.
        valid: (rows, cols) bool; invalid pixels are rendered black.
        percentiles: lower and upper percentile, in %.

    Returns:
        (rows, cols, 3) uint8 image.
    """
    out = np.zeros((*bands.shape[1:], bands.shape[0]), dtype=np.uint8)
    if not valid.any():
        return out
    for i, band in enumerate(bands):
        lo, hi = np.percentile(band[valid], percentiles)
        scaled = (band.astype(np.float32) - lo) / max(float(hi - lo), 1e-12)
        out[..., i] = np.where(valid, np.clip(scaled, 0, 1) * 255 + 0.5, 0).astype(np.uint8)
    return out


def composite(scene: np.ndarray, band_names: list[str], order: tuple[str, str, str],
              valid: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """Stretched composite of three named bands (e.g. ``("B04", "B03", "B02")``).

    Raises:
        ValueError: a band of ``order`` is not among ``band_names``.
    """
    missing = [b for b in order if b not in band_names]
    if missing:
        raise ValueError(f"bands {missing} are needed for the {order} composite but BANDS is {band_names}")
    return stretch(scene[[band_names.index(b) for b in order]], valid, percentiles)


def save_png(path: Path, image: np.ndarray) -> None:
    """Write a (rows, cols, 3) uint8 image as PNG, atomically."""
    with atomic_write(path) as tmp:
        plt.imsave(tmp, image, format="png")
    log.info("wrote %s (%dx%d)", path, image.shape[1], image.shape[0])


def label_image(labels: np.ndarray, classes: list[ClassInfo]) -> np.ndarray:
    """Colour a (rows, cols) label-code array with the classes' colours.

    Returns:
        (rows, cols, 3) uint8; unlabelled pixels (0 or unknown codes) white.
    """
    lut = np.full((int(max([c.code for c in classes] + [int(labels.max(initial=0))])) + 1, 3), 255, np.uint8)
    for c in classes:
        lut[c.code] = c.rgb
    return lut[labels]


def ground_truth_figure(path: Path, truecolor: np.ndarray, labels: np.ndarray,
                        classes: list[ClassInfo], title: str = "") -> None:
    """True colour beside the ground truth, with the class legend; PNG, atomically.

    Args:
        truecolor: (rows, cols, 3) uint8.
        labels: (rows, cols) class codes, 0 = no label.
        classes: the classes to show in the legend.
    """
    map_panels(path, [(truecolor, "True colour (B04, B03, B02)"), (label_image(labels, classes), "Ground truth")],
               classes, title)


def map_panels(path: Path, panels: list[tuple[np.ndarray, str]], classes: list[ClassInfo], title: str = "",
               columns: int | None = None) -> None:
    """Images side by side (each (rows, cols, 3) uint8, with its title), ``columns`` to a row
    (None: all in one), and the class legend; PNG."""
    aspect = panels[0][0].shape[1] / panels[0][0].shape[0]
    n = len(panels)
    across = min(n, columns or n)
    down = -(-n // across)
    fig, axes = plt.subplots(down, across, figsize=(min(across * 4.5 * aspect, 9 * across) + 4, 5 * down),
                             constrained_layout=True, squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_axis_off()
    for ax, (image, name) in zip(axes.ravel(), panels):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(name)
        ax.set_axis_off()
    handles = [Patch(facecolor=np.array(c.rgb) / 255, edgecolor="0.3", label=f"{c.code} {c.name}") for c in classes]
    fig.legend(handles=handles, loc="outside right center", fontsize=7, frameon=False)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Save a matplotlib figure as PNG atomically, close it and log the path."""
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    log.info("wrote %s", path)


def confusion_figure(path: Path, y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray,
                     names: list[str], title: str) -> None:
    """Row-normalised confusion matrix heat map with class names; PNG, atomically."""
    from sklearn.metrics import ConfusionMatrixDisplay

    size = 3 + 0.45 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 2, size))
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=labels, display_labels=[_short(n) for n in names], normalize="true",
        values_format=".2f", cmap="Blues", ax=ax, colorbar=False, text_kw={"fontsize": 6},
    )
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def training_curves(path: Path, histories: dict[str, dict[str, list[float]]], title: str) -> None:
    """Training and validation accuracy per epoch of several runs; PNG, atomically."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (name, hist) in enumerate(histories.items()):
        colour = f"C{i}"
        ax.plot(hist["accuracy"], color=colour, linestyle="--", label=f"{name} train")
        ax.plot(hist["val_accuracy"], color=colour, label=f"{name} validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def segment_boundaries(path: Path, truecolor: np.ndarray, ids: np.ndarray) -> None:
    """Segment boundaries (yellow) over the true-colour render; PNG, atomically.

    Args:
        truecolor: (rows, cols, 3) uint8.
        ids: (rows, cols) segment ids.
    """
    from skimage.segmentation import mark_boundaries

    image = mark_boundaries(truecolor, ids, color=(1, 1, 0), mode="inner")
    save_png(path, (image * 255).round().astype(np.uint8))


def prediction_figure(path: Path, truecolor: np.ndarray, truth: np.ndarray, prediction: np.ndarray,
                      classes: list[ClassInfo], title: str = "") -> None:
    """True colour | ground truth | prediction, with the class legend; PNG, atomically.

    Args:
        truecolor: (rows, cols, 3) uint8.
        truth, prediction: (rows, cols) class codes, 0 = none.
        classes: the classes of either map, for colours and the legend.
    """
    map_panels(path, [(truecolor, "True colour"), (label_image(truth, classes), "Ground truth"),
                      (label_image(prediction, classes), "Prediction")], classes, title)


def accuracy_by_patch_size(path: Path, table, study: dict[int, float]) -> None:
    """Validation and test accuracy against patch size per split, with the study's figures; PNG.

    Args:
        table: the patch sweep's results (columns patch "7x7", split, val_accuracy, test_accuracy).
        study: the study's validation accuracy (%) per patch size.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sizes = table["patch"].str.split("x").str[0].astype(int)
    for i, (split, part) in enumerate(table.assign(size=sizes).sort_values("size").groupby("split")):
        ax.plot(part["size"], 100 * part["val_accuracy"], "o-", color=f"C{i}", label=f"{split} split, validation")
        ax.plot(part["size"], 100 * part["test_accuracy"], "s--", color=f"C{i}", label=f"{split} split, test")
    ax.plot(list(study), list(study.values()), "k^:", label="study (its scene), validation")
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())  # only the patch sizes are labelled
    ax.set_xticks(sorted(set(sizes) | set(study)))
    ax.set_xticklabels([str(s) for s in sorted(set(sizes) | set(study))])
    _finish_curve(fig, ax, path, "patch size (pixels)", "accuracy (%)")


def _finish_curve(fig, ax, path: Path, xlabel: str, ylabel: str) -> None:
    """Labels, grid and legend of an accuracy curve; save it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def accuracy_by_segment_size(path: Path, table, baseline: dict) -> None:
    """Accuracy of the MLP with segment type against the median segment size, with 95 % intervals; PNG.

    Args:
        table: one row per split and segmentation (split, median_ha, accuracy, ci_low, ci_high).
        baseline: split -> (accuracy, ci_low, ci_high) of the MLP without segment type, drawn as a band.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, (split, part) in enumerate(table.sort_values("median_ha").groupby("split")):
        acc = 100 * part["accuracy"].to_numpy()
        err = [acc - 100 * part["ci_low"].to_numpy(), 100 * part["ci_high"].to_numpy() - acc]
        ax.errorbar(part["median_ha"], acc, yerr=err, fmt="o-", color=f"C{i}", capsize=3,
                    label=f"{split} split, MLP with segment type")
        if split in baseline:
            mean, low, high = (100 * v for v in baseline[split])
            ax.axhspan(low, high, color=f"C{i}", alpha=0.12)
            ax.axhline(mean, color=f"C{i}", ls=":", label=f"{split} split, MLP without (95 % band)")
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())  # only the swept sizes are labelled
    sizes = sorted(set(table["median_ha"].round(2)))
    ax.set_xticks(sizes)
    ax.set_xticklabels([f"{s:g}" for s in sizes])
    _finish_curve(fig, ax, path, "median segment size (ha)", "test accuracy (%)")
