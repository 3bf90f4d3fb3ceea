"""What is drawn over the two images for the shown iteration: the glyph grid, flow arrows,
warped blend, score heatmap, the points' markers and matches, and the hover preview."""
from __future__ import annotations

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QSpinBox, QWidget

from .field import (FieldTrack, arrows, ellipses, parallelograms, position_groups, sample_grid,
                    warp_source_onto_target)
from .legend import Legend, glyph_legend, show_heatmap_legend
from .points import ADDED, MOVED, REMOVED, RESTORED, SELECTED, PointList
from .scores import score_text
from .views import HALO, ImageView, MarkerLayer, PolylineItem, cross_marker

GLYPHS_UNDER_POINTS = 0.35  # glyph opacity while there are points: the field recedes, the matches read


class Overlays:
    """The overlay items of both views, their toggles and the glyph density; ``show(t)`` draws
    iteration ``t`` of ``result`` (set by :meth:`set_result`)."""

    def __init__(self, window: QWidget, source_view: ImageView, target_view: ImageView, points: PointList, pair):
        self.source_view, self.target_view, self.points, self.pair = source_view, target_view, points, pair
        self.result = None
        self.iteration = 0.0
        self._blend_cache: dict[int, np.ndarray] = {}
        self.points_track = FieldTrack(np.zeros((0, 2)))
        self.grid_track = FieldTrack(np.zeros((0, 2)))  # replaced by the glyph grid once a source is open
        self.grid_half = 1.0
        self._point_outlines = None  # (N, M, 2) affine ellipses of the points, centred on (0, 0)

        self.source_glyphs = source_view.add_overlay(PolylineItem(), 10)
        self.target_glyphs = target_view.add_overlay(PolylineItem(), 10, clip=True)
        self.target_arrows = target_view.add_overlay(PolylineItem((255, 255, 255), halo=HALO), 11)
        self.target_arrows.setOpacity(0.7)  # readable, yet fainter than the (opaque) markers over them
        self.target_blend = target_view.add_overlay(pg.ImageItem(axisOrder="row-major"), 5)
        self.target_blend.setOpacity(0.55)
        self.heatmap = target_view.add_overlay(pg.ImageItem(axisOrder="row-major"), 6)
        self.heatmap.setOpacity(0.6)
        self.heatmap_colours = pg.colormap.get("inferno").getLookupTable(nPts=256)
        self.heatmap.setLookupTable(self.heatmap_colours)
        self.glyph_legend = glyph_legend(target_view.view_box)
        self.heatmap_legend = Legend(target_view.view_box, "bottom-left")
        self.source_markers = MarkerLayer(source_view, 21)
        self.target_markers = MarkerLayer(target_view, 21)
        self.hover_source = source_view.add_overlay(cross_marker(), 22)
        self.hover_target = target_view.add_overlay(cross_marker(), 22)

        self.toggles: dict[str, QAction] = {}
        for key, text, shortcut, checked in (("glyphs", "Glyphs", "G", True), ("arrows", "Flow arrows", "A", False),
                                            ("blend", "Warped blend", "B", False),
                                            ("heatmap", "Score heatmap", "H", False),
                                            ("labels", "Point labels", "N", True)):
            action = QAction(text, window, checkable=True, checked=checked)
            action.setShortcut(QKeySequence(shortcut))
            action.toggled.connect(self.redraw)
            self.toggles[key] = action
        self.density = QSpinBox()
        self.density.setRange(4, 64)
        self.density.setValue(16)
        self.density.setPrefix("grid ")
        self.density.setSuffix(" per side")
        self.density.setToolTip("How many glyphs per side of the source")
        self.density.valueChanged.connect(self.rebuild_grid)
        points.subscribe(self._on_points_changed)

    def set_result(self, result) -> None:
        """Draw from ``result`` (a newer snapshot of the same run keeps the tracks' caches)."""
        self.result = self.grid_track.result = self.points_track.result = result

    def reset(self) -> None:
        """A new run (no result yet): forget the blends, new grid and point tracks, redraw."""
        self.set_result(None)
        self.iteration = 0.0
        self._blend_cache.clear()
        self.rebuild_grid()
        self._rebuild_points_track()

    def show(self, t: float) -> None:
        self.iteration = t
        self.redraw()

    def rebuild_grid(self) -> None:
        """New glyph grid at the chosen density over the source."""
        source = self.pair.source
        if source is None:
            return
        points, self.grid_half = sample_grid(source.original_size, self.density.value())
        groups, colours = position_groups(points, source.original_size)
        self.grid_track = FieldTrack(points, self.result)
        for item in (self.source_glyphs, self.target_glyphs):
            item.set_groups(groups, colours)
        self.source_glyphs.set_lines(parallelograms(points, np.broadcast_to(np.eye(2), (len(points), 2, 2)),
                                                    self.grid_half))
        self.redraw()

    def _rebuild_points_track(self) -> None:
        """A track of the listed points (kept when it already has them, as after ``match_new_point``)."""
        points = self.points.source_array()
        if self.points_track.result is not self.result or not np.array_equal(self.points_track.points, points):
            self.points_track = FieldTrack(points, self.result)

    def redraw(self) -> None:
        """Redraw every overlay for the shown iteration."""
        t = self.iteration
        have_field = self.result is not None and self.grid_track.count > 0
        show = {key: action.isChecked() for key, action in self.toggles.items()}
        self.source_glyphs.setVisible(show["glyphs"])
        self.glyph_legend.setVisible(show["glyphs"] and have_field)
        for layer in (self.source_markers, self.target_markers):
            layer.show_labels(show["labels"])
        if have_field and (show["glyphs"] or show["arrows"]):
            matches, affines, _ = self.grid_track.at(t)
            self.target_glyphs.set_lines(parallelograms(matches, affines, self.grid_half) if show["glyphs"] else None)
            head = 0.35 * max(self.result.target_size) / self.density.value()
            self.target_arrows.set_lines(arrows(self.grid_track.iteration(0)[0], matches, head).reshape(-1, 2, 2)
                                         if show["arrows"] else None)
        else:
            self.target_glyphs.set_lines(None)
            self.target_arrows.set_lines(None)
        self._draw_blend(have_field and show["blend"])
        self._draw_heatmap(show["heatmap"])
        self._draw_point_matches()

    def _draw_blend(self, visible: bool) -> None:
        self.target_blend.setVisible(visible)
        if not visible:
            return
        k = round(self.iteration)
        if k not in self._blend_cache:
            self._blend_cache[k] = warp_source_onto_target(self.result, k, self.pair.source.pixels)
        self.target_blend.setImage(self._blend_cache[k], autoLevels=False)
        self.target_blend.setRect(self.target_view.image_rect())

    def _heatmap_point(self):
        selected = [p for p in self.points.points if p.id in self.points.selected]
        chosen = selected or self.points.points
        return chosen[-1] if chosen else None

    def _draw_heatmap(self, visible: bool) -> None:
        """The score map of the selected point (else the newest), and its colour bar; with no
        point, the legend says how to get one."""
        visible = visible and self.result is not None
        point = self._heatmap_point() if visible else None
        self.heatmap.setVisible(point is not None)
        self.heatmap_legend.setVisible(visible)
        if visible:
            show_heatmap_legend(self.heatmap_legend, self.heatmap_colours, point and point.name)
        if point is None:
            return
        scores = self.result.score_map(*point.source)
        width, height = self.result.target_size
        scale = min(1.0, 512 / max(width, height))
        smooth = cv2.resize(scores, (max(1, round(width * scale)), max(1, round(height * scale))),
                            interpolation=cv2.INTER_CUBIC)
        self.heatmap.setImage(smooth, levels=(float(scores.min()), float(scores.max())))
        self.heatmap.setRect(self.target_view.image_rect())

    def _point_matches(self):
        """(matches, confidences) of the points at the shown iteration, or None; also keeps the
        shapes of their local affines (ellipses) for the markers, drawn around wherever each
        marker is (so a match dragged by hand carries its ellipse along)."""
        if self.result is None or not len(self.points):
            self._point_outlines = None
            return None
        matches, affines, confidences = self.points_track.at(self.iteration)
        self._point_outlines = ellipses(np.zeros_like(matches), affines, 0.03 * min(self.result.source_size))
        return matches, confidences

    def _draw_point_matches(self) -> None:
        """Store the matches of the shown iteration in the point list; markers and table follow."""
        self.points.set_matches(*(self._point_matches() or (None, None)))

    def match_new_point(self, x: float, y: float):
        """(target, confidence) at the shown iteration of a point about to be added at (x, y),
        or (None, None) without a result."""
        if self.result is None:
            return None, None
        self.points_track = FieldTrack(np.vstack([self.points.source_array(), [[x, y]]]), self.result)
        matches, _, confidences = self.points_track.at(self.iteration)
        return matches[-1], confidences[-1]

    def _on_points_changed(self, kind: str) -> None:
        if kind in (ADDED, REMOVED):  # the other points' matches are unchanged
            self._rebuild_points_track()
            self._point_matches()
            self._draw_markers()
            self._draw_heatmap(self.toggles["heatmap"].isChecked())
        elif kind in (MOVED, RESTORED):  # new matches: the markers follow when they are stored
            self._rebuild_points_track()
            self._draw_point_matches()
            self._draw_heatmap(self.toggles["heatmap"].isChecked())
        elif kind == SELECTED:
            self._draw_markers()
            self._draw_heatmap(self.toggles["heatmap"].isChecked())
        else:
            self._draw_markers()

    def _draw_markers(self) -> None:
        """Named dots at each point on the source and at its match (with confidence) on the target,
        where a match fixed by hand is a diamond."""
        points, selected = self.points.points, self.points.selected
        self.source_markers.set_points([p.id for p in points], [p.source for p in points], selected,
                                       [p.name for p in points])
        rows = [i for i, p in enumerate(points) if p.target is not None]
        matched = [points[i] for i in rows]
        targets = np.array([p.target for p in matched], dtype=np.float64).reshape(-1, 2)
        outlines = self._point_outlines
        self.target_markers.set_points([p.id for p in matched], targets, selected,
                                       [f"{p.name}  {score_text(p.confidence, p.fixed is not None)}".rstrip()
                                        for p in matched],
                                       outlines[rows] + targets[:, None, :] if matched and outlines is not None
                                       and len(outlines) == len(points) else None,
                                       {p.id for p in matched if p.fixed is not None})
        for glyphs in (self.source_glyphs, self.target_glyphs):
            glyphs.setOpacity(GLYPHS_UNDER_POINTS if points else 1.0)

    def preview_match(self, x: float, y: float) -> None:
        """Live match of the pointer position at the shown iteration."""
        if self.result is None:
            return
        k = round(self.iteration)
        self.hover_source.setPos(x, y)
        self.hover_target.setPos(*self.result.map_point(x, y, k))
        self.hover_source.setVisible(True)
        self.hover_target.setVisible(True)

    def hide_preview(self) -> None:
        self.hover_source.setVisible(False)
        self.hover_target.setVisible(False)
