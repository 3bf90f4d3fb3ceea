"""The Label Transfer window's point edits: selection, and the mouse and keyboard gestures that add,
place, move, nudge, rename, hide and delete keypoints. Every edit is one Project call (one undo step)."""
from __future__ import annotations

from PySide6.QtCore import QTimer

from rtn_core.labels.keypoints import ABSENT, OCCLUDED, VISIBLE

from .canvas import KeypointLayer

NEXT_VISIBILITY = {VISIBLE: OCCLUDED, OCCLUDED: ABSENT, ABSENT: VISIBLE}
NUDGE_PAUSE_MS = 400  # a nudged target re-runs once the arrow keys rest this long: a held key re-runs it once


class PointEdits:
    """Turns the layers', table's and keys' requests into edits of the window's Project."""

    def __init__(self, window):
        self.window = window
        self._nudged: str | None = None  # the target whose nudges await their re-run
        self.nudge_pause = QTimer(window, singleShot=True, interval=NUDGE_PAUSE_MS)
        self.nudge_pause.timeout.connect(lambda: self.window.transfer.resettle(self._nudged))

    def connect_layer(self, layer: KeypointLayer) -> None:
        """Route ``layer``'s mouse gestures here."""
        layer.point_clicked.connect(lambda name, additive: self.select_on(layer, [name], additive))
        layer.empty_clicked.connect(lambda x, y, additive: self.on_empty_clicked(layer, x, y, additive))
        layer.band_selected.connect(lambda names, additive: self.select_on(layer, names, additive))
        layer.points_dragged.connect(lambda names, dx, dy: self.on_dragged(layer, names, dx, dy))

    def _path_of(self, layer: KeypointLayer) -> str | None:
        window = self.window
        if window.project is None:
            return None
        return window.project.labels.source.image if layer is window.source_layer else window.review.current

    def select_on(self, layer: KeypointLayer, names, additive: bool) -> None:
        """Select ``names`` on ``layer``'s image (additive: toggle one, or add several)."""
        path = self._path_of(layer)
        if path is None:
            return
        selection = self.window.project.selection
        names = set(names)
        if additive and selection.image == path:
            if len(names) == 1 and names <= selection.names:
                names = selection.names - names  # Ctrl-click on a selected point deselects it
            else:
                names = selection.names | names
        self.window.project.select(path, names)

    def on_empty_clicked(self, layer: KeypointLayer, x: float, y: float, additive: bool) -> None:
        """Place the one selected point this image lacks; on the source, else add a new keypoint."""
        path = self._path_of(layer)
        if path is None or additive:
            return
        window = self.window
        labels, selection = window.project.labels, window.project.selection
        image = labels.image(path)
        missing = [n for n in selection.names if image.point(n) is None or image.point(n).visibility == ABSENT]
        if selection.image == path and len(selection.names) == 1 and missing:
            name = missing[0]
            if image.point(name) is None:
                window.edit(lambda p: p.add_point(path, name, x, y))
            else:
                window.edit(lambda p: p.apply(f"place {name}", lambda ls: ls.place_point(path, name, x, y)
                                              .set_visibility(path, [name], VISIBLE)))
        elif layer is window.source_layer:
            name = next(f"point_{i}" for i in range(1, len(labels.names) + 2) if f"point_{i}" not in labels.names)
            if window.edit(lambda p: p.add_point(path, name, x, y)):
                window.project.select(path, [name])
                window.table.editItem(window.table.item(window.table.names.index(name), 0))
        else:
            window.project.select(path)

    def _move(self, path: str, names, dx: float, dy: float, merge: bool = False) -> bool:
        """Move ``names`` on image ``path`` by (dx, dy) pixels as one undo step (``merge``: folded into the
        last one, see ``Project.apply``); True if that corrected a target ("fix …", like the main window's
        corrections): the caller then re-runs it (``TransferRun.resettle``) so that the other points
        follow the correction."""
        names = sorted(names)
        on_target = path != self.window.project.labels.source.image
        description = f"{'fix' if on_target else 'move'} {names[0] if len(names) == 1 else 'points'}"
        moved = self.window.edit(lambda p: p.apply(description, lambda ls: ls.move_points(path, names, dx, dy),
                                                   merge))
        return moved and on_target

    def on_dragged(self, layer: KeypointLayer, names, dx: float, dy: float) -> None:
        path = self._path_of(layer)
        if path is None:
            return
        self.window.project.select(path, names)
        if self._move(path, names, dx, dy):
            self.window.transfer.resettle(path)

    def on_table_selection(self, names) -> None:
        if self.window.project is not None:
            self.window.project.select(self.window.project.selection.image, names)

    def on_rename(self, old: str, new: str) -> None:
        if not self.window.edit(lambda p: p.rename_keypoint(old, new)):
            self.window.refresh()  # put the old name back in the table

    def set_visibility(self, name: str, visibility: str) -> None:
        """Set one keypoint's visibility on the edited image (the table's combo box)."""
        self.window.edit(lambda p: p.set_visibility(p.selection.image, [name], visibility))

    def nudge(self, dx: float, dy: float) -> None:
        """Move the selected points of the edited image by (dx, dy) pixels; a nudged target re-runs
        once the nudging pauses, not once per key press, and the presses of one burst undo as one step."""
        project = self.window.project
        burst = self.nudge_pause.isActive() and self._nudged == project.selection.image if project else False
        if project and project.selection.names and self._move(project.selection.image, project.selection.names,
                                                                dx, dy, merge=burst):
            self._nudged = project.selection.image
            self.nudge_pause.start()  # restarts the wait

    def cycle_visibility(self) -> None:
        project = self.window.project
        if not (project and project.selection.names):
            return
        selection = project.selection
        first = project.labels.image(selection.image).point(sorted(selection.names)[0])
        self.window.edit(lambda p: p.set_visibility(selection.image, sorted(selection.names),
                                                    NEXT_VISIBILITY[first.visibility]))

    def delete_selected(self) -> None:
        project = self.window.project
        if not (project and project.selection.names):
            return
        selection = project.selection
        if selection.image == project.labels.source.image:
            self.window.edit(lambda p: p.delete_keypoints(sorted(selection.names)))
        else:
            self.window.edit(lambda p: p.set_visibility(selection.image, sorted(selection.names), ABSENT))

    def select_all(self) -> None:
        project = self.window.project
        if project:
            path = project.selection.image
            project.select(path, [p.name for p in project.labels.image(path).points if p.visibility != ABSENT])

    def clear_selection(self) -> None:
        if self.window.project:
            self.window.project.select(self.window.project.selection.image)
