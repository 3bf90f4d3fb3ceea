"""The Label Transfer window's review navigation: which targets there are and in what order, the one
shown (``current``), next / previous, accept / unaccept, adding and removing targets."""
from __future__ import annotations

import os

from PySide6.QtWidgets import QFileDialog

from rtn_core.labels.keypoints import SKIPPED, ImageLabels
from rtn_core.labels.transfer import expand_targets

from .project_files import IMAGE_FILTER


class ReviewNavigation:
    """Moves through the window's targets; ``current`` is the target shown on the right (or None)."""

    def __init__(self, window):
        self.window = window
        self.current: str | None = None

    def ordered_targets(self) -> list[ImageLabels]:
        """The targets in strip order: as added, or worst first."""
        project = self.window.project
        if project is None:
            return []
        labels = project.labels
        if self.window.actions_by_name["worst_first"].isChecked():  # reviewed ones need no review: last
            by_path = {t.image: t for t in labels.targets}
            return sorted((by_path[path] for path in labels.worst_first()), key=lambda t: t.reviewed)
        return list(labels.targets)

    def go_to(self, path: str) -> None:
        """Show target ``path`` and make it the edited image."""
        if self.window.project is None:
            return
        self.current = path
        self.window.project.select(path)
        self.window.refresh()

    def step(self, step: int) -> None:
        """Go ``step`` targets on (negative: back) in strip order, stopping at the ends."""
        order = [t.image for t in self.ordered_targets()]
        if not order:
            return
        index = order.index(self.current) + step if self.current in order else 0
        self.go_to(order[max(0, min(len(order) - 1, index))])

    def accept_current(self) -> None:
        """Mark the shown target reviewed and move on to the next unreviewed one."""
        project = self.window.project
        if project is None or self.current is None:
            return
        target = project.labels.image(self.current)
        if target.status == SKIPPED:
            self.window.show_error(f"{os.path.basename(self.current)} was skipped ({target.reason}): nothing to accept.")
            return
        self.window.edit(lambda p: p.set_reviewed([self.current]))
        order = [t for t in self.ordered_targets()]
        paths = [t.image for t in order]
        later = order[paths.index(self.current) + 1:] + order[:paths.index(self.current)]
        following = next((t.image for t in later if not t.reviewed and t.status != SKIPPED), None)
        if following:
            self.go_to(following)

    def unaccept_current(self) -> None:
        if self.window.project and self.current:
            self.window.edit(lambda p: p.set_reviewed([self.current], False))

    def add_targets(self, entries) -> None:
        """Add image files and folders (their images) as targets."""
        window = self.window
        if window.project is None:
            window.show_error("Open a source image or import its keypoints first.")
            return
        paths = expand_targets(entries, window.project.labels.source.image)
        known = {im.image for im in window.project.labels.images}
        fresh = [p for p in paths if p not in known]
        if not fresh:
            window.status_text.setText("No new target images.")
            return
        window.edit(lambda p: p.add_targets(fresh))
        if self.current is None or self.current not in known:
            self.go_to(fresh[0])
        window.status_text.setText(f"Added {len(fresh)} target image(s). Transfer with Ctrl+R.")

    def remove_current_target(self) -> None:
        if self.window.project and self.current:
            self.window.edit(lambda p: p.remove_targets([self.current]))

    def add_targets_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Add target images", self.window.files.folder(),
                                                IMAGE_FILTER)
        if paths:
            self.add_targets(paths)

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Add every image in a folder", self.window.files.folder())
        if folder:
            self.add_targets([folder])
