"""The Label Transfer window's review navigation: which targets there are and in what order, the one
shown (``current``), next / previous, accept / unaccept, adding and removing targets."""
from __future__ import annotations

import os

from PySide6.QtWidgets import QFileDialog

from rtn_core.images import looks_like_image
from rtn_core.labels.keypoints import PENDING, SKIPPED, ImageLabels
from rtn_core.labels.transfer import expand_targets

from .project_files import IMAGE_FILTER


class ReviewNavigation:
    """Moves through the window's targets; ``current`` is the target shown on the right (or None).

    Sorted worst first, the order follows the edits and results as they come, except that the
    target shown keeps its place until the user moves on (so it never jumps away while edited).
    """

    def __init__(self, window):
        self.window = window
        self.current: str | None = None
        self._pinned: tuple[str, int] | None = None  # (current target, its place) while worst first

    def ordered_targets(self) -> list[ImageLabels]:
        """The targets in strip order: as added, or worst first (reviewed last, the shown one kept in place)."""
        project = self.window.project
        if project is None:
            return []
        labels = project.labels
        if not self.worst_first:
            return list(labels.targets)
        by_path = {t.image: t for t in labels.targets}
        order = sorted((by_path[path] for path in labels.worst_first()), key=lambda t: t.reviewed)
        if self._pinned and self._pinned[0] == self.current and self.current in by_path:
            order.remove(by_path[self.current])
            order.insert(min(self._pinned[1], len(order)), by_path[self.current])
        return order

    @property
    def worst_first(self) -> bool:
        return self.window.actions_by_name["worst_first"].isChecked()

    def set_worst_first(self, on: bool) -> None:
        """Sort (or stop sorting) worst first; sorted, show the worst target."""
        self._pinned = None
        targets = self.ordered_targets()
        if on and targets:
            self.go_to(targets[0].image)
        else:
            self.window.refresh()

    def go_to(self, path: str) -> None:
        """Show target ``path`` and make it the edited image (it keeps this place in the order while shown)."""
        if self.window.project is None:
            return
        self._pinned = None
        order = [t.image for t in self.ordered_targets()]
        self._pinned = (path, order.index(path)) if path in order else None
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

    def accept_current(self, force: bool = False) -> bool:
        """Mark the shown target reviewed and move on to the next unreviewed one.

        With flagged points left, ask first (``force``: accept without asking, e.g. Shift+A); the status
        line says how many flags the accepted target still has. False if nothing was accepted.
        """
        project = self.window.project
        if project is None or self.current is None:
            return False
        target = project.labels.image(self.current)
        name = os.path.basename(self.current)
        if target.status == SKIPPED:
            self.window.show_error(f"{name} was skipped ({target.reason}): nothing to accept.")
            return False
        if target.status == PENDING:
            self.window.show_error(f"{name} has not been transferred yet: transfer first (Ctrl+R), then review it.")
            return False
        flagged = len(target.flagged)
        if flagged and not force and self.window.ask(
                "Accept with flagged points?", f"{name} still has {flagged} flagged point(s): "
                + ", ".join(p.name for p in target.flagged) + ". Accept it anyway?",
                ("Accept anyway", "Keep reviewing")) != "Accept anyway":
            self.window.status_text.setText(f"Not accepted: {name} has {flagged} flagged point(s) left.")
            return False
        accepted = self.current
        if not self.window.edit(lambda p: p.set_reviewed([accepted])):
            return False
        order = self.ordered_targets()
        paths = [t.image for t in order]
        later = order[paths.index(accepted) + 1:] + order[:paths.index(accepted)]
        following = next((t.image for t in later if not t.reviewed and t.status != SKIPPED), None)
        if following:
            self.go_to(following)
        self.window.status_text.setText(f"Accepted {name}" + (f" with {flagged} flagged point(s) left." if flagged
                                                              else ".")
                                        + ("" if following else " Every transferred target is reviewed: "
                                           "Export > Reviewed Targets Only writes them."))
        return True

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
        refused = [p for p in fresh if not os.path.isdir(p) and not looks_like_image(p)]
        fresh = [p for p in fresh if p not in refused]
        taken, kept, same_name = {os.path.basename(path) for path in known}, [], []
        for path in fresh:  # exports name images by file name: two of one name could not be told apart
            (same_name if os.path.basename(path) in taken else kept).append(path)
            taken.add(os.path.basename(path))
        fresh, problems = kept, []
        if refused:
            problems.append(f"not an image this app can read: {', '.join(os.path.basename(p) for p in refused)}")
        if same_name:
            problems.append("an image of the same file name is already in the project (exports name images by "
                            f"file name): {', '.join(same_name)}")
        if problems:
            window.show_error("Not added, " + "; not added, ".join(problems))
        if not fresh:
            if not problems:
                window.status_text.setText("No new target images.")
            return
        window.edit(lambda p: p.add_targets(fresh))
        if self.current is None or self.current not in known:
            self.go_to(fresh[0])
        window.status_text.setText(f"Added {len(fresh)} target image(s). Transfer with Ctrl+R.")

    def remove_current_target(self) -> None:
        """Remove the shown target from the project (undoable) and show the one after it in the strip."""
        if not (self.window.project and self.current):
            return
        removed, order = self.current, [t.image for t in self.ordered_targets()]
        rest = order[order.index(removed) + 1:] + order[:order.index(removed)][::-1] if removed in order else []
        if self.window.edit(lambda p: p.remove_targets([removed])):
            if rest:
                self.go_to(rest[0])
            self.window.status_text.setText(f"Removed {os.path.basename(removed)} from the targets "
                                            "(Edit > Undo brings it back).")

    def add_targets_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self.window, "Add target images", self.window.files.folder(),
                                                IMAGE_FILTER)
        if paths:
            self.add_targets(paths)

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Add every image in a folder",
                                                  self.window.files.folder())
        if folder:
            self.add_targets([folder])
