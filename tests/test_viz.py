"""seglib.viz: colours, overlays, shares and legends, by hand."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from seglib import labels, masks, viz


def test_colorize_categories_by_hand():
    rgb = viz.colorize_categories(np.array([[1, 255], [7, 0]], dtype=np.uint8))
    np.testing.assert_array_equal(rgb, [[[128, 64, 128], [255, 255, 255]], [[0, 0, 142], [0, 0, 0]]])
    with pytest.raises(ValueError, match=r"\[9\]"):
        viz.colorize_categories(np.array([[9]]))


def test_colorize_label_ids_uses_the_official_colours():
    np.testing.assert_array_equal(viz.colorize_label_ids(np.array([[23, 24]])), [[[70, 130, 180], [220, 20, 60]]])


def test_overlay_by_hand():
    image = np.full((1, 2, 3), 200, np.uint8)
    mask = np.zeros((1, 2, 3), np.uint8)
    np.testing.assert_array_equal(viz.overlay(image, mask, 0.25), np.full((1, 2, 3), 150))
    with pytest.raises(ValueError, match=r"\(1, 2, 3\) and \(2, 2, 3\)"):
        viz.overlay(image, np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="alpha"):
        viz.overlay(image, mask, 1.5)
    with pytest.raises(ValueError, match="must be uint8.*float32"):
        viz.overlay(image.astype(np.float32) / 255, mask)


def test_category_shares_by_hand():
    shares = masks.category_shares(np.array([[1, 1, 5, 255]], dtype=np.uint8))
    assert shares["flat"] == 0.5 and shares["sky"] == 0.25 and shares["void"] == 0.0
    assert sum(shares.values()) == 0.75  # the IGNORE pixel belongs to no category


def test_legend_and_row():
    assert [h.get_label() for h in viz.legend_handles()] == list(labels.CATEGORY_NAMES)
    assert len(viz.legend_handles("labels")) == labels.NUM_LABEL_IDS
    with pytest.raises(ValueError, match="at least one panel"):
        viz.show_row({})
    with pytest.raises(ValueError, match="'train'"):
        viz.legend_handles("train")
    figure = viz.show_row({"a": np.zeros((4, 8), np.uint8), "b": np.zeros((4, 8, 3), np.uint8)})
    assert len(figure.axes) == 2 and [a.get_title() for a in figure.axes] == ["a", "b"]
    assert figure.axes[0].images[0].get_clim() == (0, 255)  # uint8 drawn on its full range, not stretched


def test_plot_confusion_normalises_rows_by_hand():
    import matplotlib.pyplot as plt

    counts = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]], dtype=np.int64)  # row 1: a class with no pixels
    axis = viz.plot_confusion(counts, names=["a", "b", "c"], title="by hand")
    np.testing.assert_allclose(axis.images[0].get_array(), [[0.75, 0.25, 0], [0, 0, 0], [0.25, 0.25, 0.5]])
    assert axis.images[0].get_clim() == (0, 1) and axis.get_title() == "by hand"
    assert [t.get_text() for t in axis.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in axis.get_yticklabels()] == ["a", "b", "c"]
    assert (axis.get_xlabel(), axis.get_ylabel()) == ("predicted", "true")
    assert len(axis.figure.axes) == 2  # the axis and its colour bar
    plt.close(axis.figure)

    figure, axes = plt.subplots(1, 2)
    drawn = viz.plot_confusion(np.eye(labels.NUM_CATEGORIES), axis=axes[1], colorbar=False, fontsize=8)
    assert drawn is axes[1] and len(figure.axes) == 2 and not axes[0].images
    assert [t.get_text() for t in drawn.get_yticklabels()] == list(labels.CATEGORY_NAMES)
    assert drawn.get_yticklabels()[0].get_fontsize() == 8
    plt.close(figure)

    with pytest.raises(ValueError, match=r"square.*\(2, 3\)"):
        viz.plot_confusion(np.zeros((2, 3)), names=["a", "b"])
    with pytest.raises(ValueError, match="names has 2 entries for a 3x3"):
        viz.plot_confusion(counts, names=["a", "b"])
