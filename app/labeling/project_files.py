"""The Label Transfer window's files: new project, import keypoints, open, save, save as, autosave,
recovery of an unsaved session, export, and the file dialogs behind the menu entries.

File dialogs open only from the ``*_dialog`` entry points (and from ``import_keypoints`` when the
keypoint file names no readable image and none is given); questions go through the window's ``ask``,
which tests replace. So every action can be driven with explicit paths.
"""
from __future__ import annotations

import os
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFileDialog

from rtn_core.images import load_image
from rtn_core.labels.formats import FORMATS, read_labels, read_source, write_labels
from rtn_core.labels.keypoints import ImageLabels, Point, check_inside, new_project
from rtn_core.labels.project import (Project, describe_autosave, discard_orphaned, newer_autosave,
                                     orphaned_autosaves)
from rtn_core.labels.transfer import IMAGE_EXTENSIONS, expand_targets

from ..pair import SAMPLE_PAIR, SAMPLES

IMAGE_FILTER = "Images (" + " ".join(f"*{e}" for e in IMAGE_EXTENSIONS) + ");;All files (*)"
LABEL_FILTER = "Keypoint files (*.json *.csv *.xml);;All files (*)"
PROJECT_FILTER = "RTN Studio label projects (*.rtnproj);;All files (*)"
EXPORT_SUFFIX = {"coco": ".json", "labelstudio": ".json", "cvat": ".xml", "csv": ".csv", "labelme": ""}
SAMPLE_KEYPOINTS = os.path.join(SAMPLES, "cat-chelsea-keypoints.json")  # on SAMPLE_PAIR's source
LISTED = 5  # sessions left behind named in the question (the File menu lists them all)


class ProjectFiles:
    """Reads and writes the window's project; ``autosave_dir`` holds the autosaves of projects never
    saved, one per session, each locked while its session lives."""

    def __init__(self, window, autosave_dir: str, autosave_ms: int):
        self.window = window
        self.autosave_dir = autosave_dir
        self.last_folder = ""  # where this session last saved or exported (see save_folder)
        self.autosave_timer = QTimer(window, interval=autosave_ms)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()
        self.kept_for_later: set[str] = set()  # autosaves the user chose to keep: not asked about again

    def recoverable(self) -> list[str]:
        """Autosaves of never-saved sessions that ended without saving (crash, kill), newest first;
        live sessions (other windows, other app instances) are not offered."""
        return orphaned_autosaves(self.autosave_dir)

    def maybe_save(self) -> bool:
        """Before the project is replaced: offer to save changes; False if the user cancels."""
        project = self.window.project
        if project is None or not project.modified:
            return True
        choice = self.window.ask("Unsaved changes", "Save the changes to this label project first?",
                                 ("Save", "Discard", "Cancel"))
        if choice == "Cancel":
            return False
        if choice == "Save":
            return self.save()
        self._drop_autosave()
        return True

    def _drop_autosave(self) -> None:
        if self.window.project is not None:
            self.window.project.discard_autosave()  # its own only: never another session's

    def _new_project(self, labels) -> bool:
        """Show a new unsaved project; first offer back what sessions that were never saved left behind
        (the newest can be recovered instead; closing the question keeps them all for later, and
        this window does not ask about the kept ones again: File > Recover Unsaved Session has them)."""
        left = [path for path in self.recoverable() if path not in self.kept_for_later]
        if left:
            one = len(left) == 1
            recover, discard, keep = (("Recover it", "Discard it", "Keep it for later") if one else
                                      ("Recover the newest", "Discard them all", "Keep them for later"))
            choice = self.window.ask(
                "Unsaved session found", ("A session that was never saved (the window closed or crashed) can "
                                          "still be recovered:" if one else f"{len(left)} sessions that were "
                                          "never saved (windows closed or crashed) can still be recovered:")
                + "".join(f"\n• {describe_autosave(path)}" for path in left[:LISTED])
                + (f"\n• ... and {len(left) - LISTED} older" if len(left) > LISTED else "")
                + "\n\nKept ones stay under File > Recover Unsaved Session.", (recover, discard, keep))
            if choice == recover:
                self._recover(left[0])
                return False
            if choice == discard:
                for path in left:
                    discard_orphaned(path)
            else:
                self.kept_for_later.update(left)
        self.window.set_project(Project.untitled(labels, self.autosave_dir))
        return True

    def new_from_image(self, path: str) -> None:
        """A new project whose source is the image at ``path``, with no keypoints yet (click to add)."""
        if self.new_from_points(path):
            self.window.status_text.setText("Click the source image to add keypoints, then add targets (Ctrl+T).")

    def new_from_points(self, source_path: str, keypoints=(), target_paths=(), target_keypoints=()) -> bool:
        """A new project: the source image ``source_path`` with ``keypoints`` ``(name, x, y)`` (its original
        pixels; they count as placed by hand) and ``target_paths`` (images or folders) as pending targets;
        ``target_keypoints`` ``(target path, name, x, y)`` are placed by hand on those targets (e.g. the
        main window's fixed matches), so a transfer keeps and imposes them.

        Bad input (an unreadable image, a point off the image, a repeated name) is one message; the
        window keeps what it showed. False if refused or the user cancelled.
        """
        if not self.maybe_save():
            return False
        try:
            size = load_image(source_path).original_size
            points = tuple(Point(str(name), float(x), float(y)) for name, x, y in keypoints)
            names = [p.name for p in points]
            repeated = sorted({n for n in names if names.count(n) > 1})
            if repeated or not all(n.strip() for n in names):
                raise ValueError(f"keypoint names must be unique and not empty ({', '.join(repeated) or 'empty name'})")
            source = ImageLabels(os.path.abspath(source_path), size, points)
            check_inside(source, [(p.x, p.y) for p in points])
        except ValueError as exc:
            self.window.show_error(f"Cannot start a project from {os.path.basename(source_path)}: {exc}")
            return False
        labels = new_project(source).add_targets(expand_targets(target_paths, source.image))
        for path, name, x, y in target_keypoints:
            labels = labels.add_point(os.path.abspath(path), str(name), float(x), float(y))
        if not self._new_project(labels):
            return False
        self.window.status_text.setText(f"{len(points)} keypoint(s) on {os.path.basename(source.image)}, "
                                        f"{len(labels.targets)} target(s): transfer with Ctrl+R.")
        return True

    def import_keypoints(self, path: str, image: str | None = None) -> bool:
        """Start a project from a keypoint file (labelme / COCO JSON, CSV name,x,y, or our exports).

        The source image is ``image``, else the current project's source, else the file's own image.
        Targets already in the window are kept (as pending). A broken file leaves everything as it was.
        """
        old = self.window.project
        try:
            if image is None and old is not None:
                image = old.labels.source.image
            if image is None:
                stored = [im.image for im in read_labels(path).images]
                image = next((p for p in stored if os.path.isfile(p)), None) if len(stored) == 1 else None
            if image is None:
                image = self.choose_open("Source image for these keypoints", IMAGE_FILTER,
                                         os.path.dirname(os.path.abspath(path)))  # images sit beside their labels
                if not image:
                    return False
            image = os.path.abspath(image)
            labels = read_source(path, image, load_image(image).original_size)
        except ValueError as exc:
            self.window.show_error(f"Cannot import keypoints from {os.path.basename(path)}: {exc}")
            return False
        if old is not None:
            labels = labels.with_settings(old.labels.settings).add_targets(
                [t.image for t in old.labels.targets if t.image != image])
            if not self.maybe_save():
                return False
        if not self._new_project(labels):
            return False
        self.window.status_text.setText(f"Imported {len(labels.source.points)} keypoints from "
                                        f"{os.path.basename(path)}.")
        return True

    def open_sample(self) -> bool:
        """The sample cat: its keypoints on the sample source, the other sample photo as the target."""
        if not self.maybe_save():
            return False
        source, target = SAMPLE_PAIR
        try:
            labels = read_source(SAMPLE_KEYPOINTS, source, load_image(source).original_size)
        except ValueError as exc:
            self.window.show_error(f"Cannot open the sample: {exc}")
            return False
        if not self._new_project(labels.add_targets([target])):
            return False
        self.window.status_text.setText(f"The sample cat: {len(labels.names)} keypoints. Transfer them to the "
                                        "other photo with Ctrl+R, then review with A (accept) and [ / ] "
                                        "(previous / next target).")
        return True

    def open_dropped_source(self, path: str) -> None:
        """A file dropped on the source pane: an image starts a new project, anything else is imported."""
        if os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS:
            self.new_from_image(path)
        else:
            self.import_keypoints(path)

    def open_project(self, path: str) -> bool:
        """Open a project file, offering to restore a newer autosave of it."""
        if not self.maybe_save():
            return False
        use_autosave = False
        if newer_autosave(path):
            use_autosave = self.window.ask(
                "Restore autosave?", f"{os.path.basename(path)} has an autosave newer than the file: "
                "changes that were never saved. Restore them?", ("Restore", "Open the saved file")) == "Restore"
        try:
            project = Project.open(path, use_autosave=use_autosave)
        except (ValueError, OSError) as exc:
            self.window.show_error(f"Cannot open the project: {exc}")
            return False
        self.window.set_project(project)
        self.window.status_text.setText(f"Opened {os.path.basename(path)}"
                                        + (" with its autosaved changes" if use_autosave else "") + ".")
        return True

    def recover_unsaved(self, path: str) -> bool:
        """Open the autosave ``path`` of a session that was never saved (one of :meth:`recoverable`);
        it stays unsaved until Save As. False if refused or the user cancelled."""
        return self.maybe_save() and self._recover(path)

    def _recover(self, path: str) -> bool:
        description = describe_autosave(path) if os.path.exists(path) else os.path.basename(path)
        try:
            self.window.set_project(Project.recover(path))
        except (ValueError, OSError) as exc:
            self.window.show_error(f"Cannot recover the unsaved session {description}: {exc}")
            return False
        self.window.status_text.setText(f"Recovered {description}: save it with Ctrl+Shift+S.")
        return True

    def save(self, path: str | None = None) -> bool:
        """Save the project (``path``: save as); without a file yet, ask for one."""
        project = self.window.project
        if project is None:
            return False
        if path is None and project.path is None:
            path = self.choose_save("Save label project", "labels.rtnproj", PROJECT_FILTER)
            if not path:
                return False
        try:
            project.save(path)
        except (ValueError, OSError) as exc:
            self.window.show_error(f"Cannot save the project: {exc}")
            return False
        self.window.update_actions()
        self.window.status_text.setText(f"Saved {project.path}.")
        return True

    def autosave(self) -> None:
        """Write the autosave if anything changed since the last (auto)save (timer, after transfers)."""
        project = self.window.project
        if project is None or not project.autosave_path:
            return
        try:
            os.makedirs(os.path.dirname(os.path.abspath(project.autosave_path)), exist_ok=True)
            if project.autosave():
                self.window.autosave_note.setText(f"Autosaved {time.strftime('%H:%M')}")
        except OSError as exc:
            self.window.show_error(f"Autosave failed: {exc}")

    def export(self, format_name: str, path: str, reviewed_only: bool = False) -> bool:
        """Write the source and the transferred (or only the reviewed) targets in ``format_name``."""
        if self.window.project is None:
            return False
        labels = self.window.project.labels.for_export(reviewed_only)
        try:
            write_labels(labels, path, format_name)
        except (ValueError, OSError) as exc:
            self.window.show_error(f"Export failed: {exc}")
            return False
        self.window.status_text.setText(f"Exported the source and {len(labels.targets)} target(s) as "
                                        f"{format_name} to {path}.")
        return True

    # ----- dialogs (entry points from menus; tests call the methods above with paths) ------------------
    def folder(self) -> str:
        """Where dialogs that open files start: the project's folder (else its source's), else the working directory."""
        project = self.window.project
        if project is not None:
            return os.path.dirname(project.path or project.labels.source.image)
        return os.getcwd()

    def choose_open(self, title: str, filters: str, folder: str | None = None) -> str:
        """A file to open, the dialog starting in ``folder`` (default :meth:`folder`); "" if cancelled."""
        return QFileDialog.getOpenFileName(self.window, title, folder or self.folder(), filters)[0]

    def save_folder(self) -> str:
        """Where save and export dialogs start: the saved project's folder, else the folder this session
        last wrote to, else home; never the images' folder, which may be the shipped samples."""
        project = self.window.project
        if project is not None and project.path:
            return os.path.dirname(project.path)
        return self.last_folder or os.path.expanduser("~")

    def choose_save(self, title: str, name: str, filters: str, folder_only: bool = False) -> str:
        """A path to write (a folder with ``folder_only``), asked from :meth:`save_folder`; remembered there."""
        if folder_only:
            path = QFileDialog.getExistingDirectory(self.window, title, self.save_folder())
        else:
            path = QFileDialog.getSaveFileName(self.window, title, os.path.join(self.save_folder(), name), filters)[0]
        if path:
            self.last_folder = path if folder_only else os.path.dirname(path)
        return path

    def new_from_image_dialog(self) -> None:
        path = self.choose_open("Source image", IMAGE_FILTER)
        if path:
            self.new_from_image(path)

    def import_keypoints_dialog(self) -> None:
        path = self.choose_open("Import source keypoints (labelme, COCO, CSV name,x,y)", LABEL_FILTER)
        if path:
            self.import_keypoints(path)

    def open_project_dialog(self) -> None:
        path = self.choose_open("Open label project", PROJECT_FILTER)
        if path:
            self.open_project(path)

    def save_as_dialog(self) -> None:
        path = self.choose_save("Save label project as", "labels.rtnproj", PROJECT_FILTER)
        if path:
            self.save(path)

    def export_dialog(self, format_name: str, reviewed_only: bool = False) -> None:
        if self.window.project is None:
            return
        if FORMATS[format_name].writes_folder:
            path = self.choose_save(f"Export {format_name}: folder for the files", "", "", folder_only=True)
        else:
            stem = os.path.splitext(os.path.basename(self.window.project.labels.source.image))[0]
            named = "" if format_name == "csv" else f"-{format_name}"  # the suffix names the csv already
            path = self.choose_save(f"Export {FORMATS[format_name].description}",
                                    f"{stem}-keypoints{named}{EXPORT_SUFFIX[format_name]}", "All files (*)")
        if path:
            self.export(format_name, path, reviewed_only)
