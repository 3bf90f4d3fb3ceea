"""What the main window draws over the images, offscreen: markers and arrows that read on any
photo, labels that avoid each other, glyphs kept inside the target, the legends, glyph dimming."""
from __future__ import annotations

import os
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QWidget

from app.field import position_colours
from app.legend import Legend, glyph_legend, show_heatmap_legend
from app.overlays import GLYPHS_UNDER_POINTS, Overlays
from app.points import PointList
from app.views import HALO, ImageView, MarkerLayer, PolylineItem
from rtn_core.images import LoadedImage
from rtn_core.result import CorrespondenceResult, Iteration


def solid(colour, size=(160, 120)) -> LoadedImage:
    width, height = size
    return LoadedImage(np.full((height, width, 3), colour, np.uint8), size)


@pytest.fixture
def view(qtbot):
    view = ImageView("")
    qtbot.addWidget(view)
    view.resize(320, 240)
    view.show()
    qtbot.waitExposed(view)
    return view


def pixels(view: ImageView) -> np.ndarray:
    """The view as painted now: (h, w, 3) uint8 RGB."""
    image = view.grab().toImage().convertToFormat(view.grab().toImage().Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, :3 * image.width()].reshape(image.height(), image.width(), 3).copy()


def on_screen(view: ImageView, x: float, y: float) -> tuple[int, int]:
    """Image pixel (x, y) -> the (column, row) of the view's pixel it is drawn at."""
    point = view.mapFromScene(view.view_box.mapViewToScene(QPointF(x, y)))
    ratio = view.devicePixelRatioF()
    return round(point.x() * ratio), round(point.y() * ratio)


@pytest.mark.parametrize("background", [(255, 255, 255), (0, 200, 255), (20, 20, 20)])
def test_markers_and_arrows_read_on_white_on_their_old_colour_and_on_black(view, qtbot, background):
    view.set_image(solid(background))
    layer = MarkerLayer(view, 21)
    layer.set_points([1], [(40.0, 60.0)], set(), ["1"])
    arrow = view.add_overlay(PolylineItem((255, 255, 255), halo=HALO), 11)
    arrow.set_lines(np.array([[[100.0, 20.0], [100.0, 100.0]]]))
    qtbot.wait(20)
    shown = pixels(view).astype(int)
    for x, y in ((40.0, 60.0), (100.0, 60.0)):  # the dot's centre, a point on the arrow
        column, row = on_screen(view, x, y)
        strip = shown[row, column - 8:column + 9]
        brightness = strip.sum(axis=1)
        assert brightness.max() >= 3 * 235 and brightness.min() <= 3 * 90  # a light stroke beside a dark halo


def test_labels_of_close_points_do_not_overlap_at_any_zoom_and_can_be_hidden(view, qtbot):
    view.set_image(solid((128, 128, 128)))
    layer = MarkerLayer(view, 21)
    points = [(40.0 + 4 * i, 60.0 + 3 * (i % 2)) for i in range(5)]
    layer.set_points(range(1, 6), points, {3}, [f"{i}  {10 + i}%" for i in range(1, 6)])

    def on_screen_rect(item, rect):  # these items ignore the zoom: only their screen rects mean anything
        return item.deviceTransform(view.viewportTransform()).mapRect(rect)

    usual = []
    for zoom in (1.0, 0.1):  # then zoomed in ten times: the labels move again
        view.view_box.scaleBy((zoom, zoom), center=QPointF(50, 60))
        qtbot.wait(10)
        labels = [layer.markers[i].label for i in range(1, 6)]
        rects = [on_screen_rect(label, label.rect()) for label in labels]
        assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])
        dots = [on_screen_rect(layer.markers[i], layer.markers[i].boundingRect()) for i in range(1, 6)]
        assert not any(rect.intersects(dot) for rect in rects for dot in dots)
        usual.append(sum(label.offset[0] > 0 and label.offset[1] < 0 for label in labels))
    assert usual[0] < 5 == usual[1]  # crowded, some labels moved; spread out, all sit right-above
    layer.show_labels(False)
    assert not any(marker.label.isVisible() for marker in layer.markers.values())
    layer.set_points([1, 2, 6], points[:3], set(), ["1", "2", "6"])
    assert not any(marker.label.isVisible() for marker in layer.markers.values())


def test_clipped_lines_stay_inside_the_image(view, qtbot):
    view.set_image(solid((128, 128, 128)))
    lines = view.add_overlay(PolylineItem((255, 0, 0), width=3.0), 10, clip=True)
    lines.set_lines(np.array([[[-60.0, 60.0], [220.0, 60.0]]]))  # runs off both sides
    view.view_box.setRange(xRange=(-100, 260), yRange=(0, 120), padding=0)
    qtbot.wait(20)
    assert view.image_rect().contains(lines.mapRectToParent(lines.boundingRect()))
    shown = pixels(view).astype(int)
    row = on_screen(view, 0, 60)[1]
    red = (shown[row, :, 0] > 200) & (shown[row, :, 1] < 80)
    inside_from, inside_to = on_screen(view, -0.5, 60)[0], on_screen(view, 159.5, 60)[0]
    assert red[inside_from + 2:inside_to - 2].all() and not red[:inside_from - 1].any() and not red[inside_to + 1:].any()


def test_heatmap_legend_names_its_point_or_says_what_to_do(view):
    lookup = np.stack([np.arange(256)] * 3, axis=1).astype(np.uint8)
    legend = Legend(view.view_box, "bottom-left")
    show_heatmap_legend(legend, lookup, None)
    assert legend.isVisible() and "Click a point" in legend.caption.text() and not legend.picture.isVisible()
    show_heatmap_legend(legend, lookup, "p3")
    assert legend.caption.text() == "Score map of p3" and legend.picture.isVisible()
    bar = legend.picture.pixmap().toImage()
    assert bar.pixelColor(0, 5).red() < 5 and bar.pixelColor(bar.width() - 1, 5).red() > 250  # low -> high
    assert [end.text() for end in legend.ends] == ["low", "high"]
    box, plate = view.view_box.sceneBoundingRect(), legend.sceneBoundingRect()
    assert box.contains(plate) and box.bottom() - plate.bottom() < 10  # in the bottom-left corner
    assert box.contains(glyph_legend(view.view_box).sceneBoundingRect())


def test_glyph_legend_swatch_shows_the_glyph_colours(view):
    legend = glyph_legend(view.view_box)
    swatch, colours = legend.picture.pixmap().toImage(), position_colours()
    for row, column in ((0, 0), (5, 5), (0, 5)):
        x, y = (column + 0.5) * swatch.width() / 6, (row + 0.5) * swatch.height() / 6
        shown = swatch.pixelColor(int(x), int(y))
        assert (shown.red(), shown.green(), shown.blue()) == tuple(colours[row, column])


def test_overlays_dim_glyphs_under_points_clip_them_and_tell_the_heatmap_point(qtbot):
    source_view, target_view = ImageView(""), ImageView("")
    window = QWidget()
    qtbot.addWidget(window)
    source, target = solid((90, 90, 90), (96, 64)), solid((90, 90, 90), (64, 48))
    source_view.set_image(source)
    target_view.set_image(target)
    points = PointList()
    overlays = Overlays(window, source_view, target_view, points, SimpleNamespace(source=source))
    field = torch.zeros(6, 4, 4)
    field[0] = field[3] = 1.0
    field[4] = 0.5  # everything moves half the target's width right: the right half falls off
    result = CorrespondenceResult((96, 64), (64, 48), [Iteration(field, torch.full((4, 4), 0.5), 16)],
                                  source_features=torch.nn.functional.normalize(torch.rand(8, 4, 4), dim=0),
                                  target_features=torch.nn.functional.normalize(torch.rand(8, 4, 4), dim=0))
    overlays.set_result(result)
    overlays.rebuild_grid()
    overlays.toggles["heatmap"].setChecked(True)
    assert overlays.target_glyphs.lines[..., 0].max() > 64  # glyphs drawn past the target's right edge...
    assert target_view.image_rect().contains(overlays.target_glyphs.boundingRect())  # ...are clipped
    assert overlays.glyph_legend.isVisible() and overlays.target_glyphs.opacity() == 1.0
    assert "Click a point" in overlays.heatmap_legend.caption.text() and not overlays.heatmap.isVisible()
    points.add(10, 10, (40, 20), 0.4)
    points.add(50, 30, (50, 30), 0.6)
    assert overlays.target_glyphs.opacity() == overlays.source_glyphs.opacity() == GLYPHS_UNDER_POINTS
    assert overlays.heatmap_legend.caption.text() == "Score map of p2" and overlays.heatmap.isVisible()
    points.select({1})
    assert overlays.heatmap_legend.caption.text() == "Score map of p1"
    overlays.toggles["labels"].setChecked(False)
    assert not overlays.target_markers.markers[1].label.isVisible()
    points.clear()
    assert overlays.target_glyphs.opacity() == 1.0
