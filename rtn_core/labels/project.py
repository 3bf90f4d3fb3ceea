"""The label-transfer session the GUI observes: labels, selection, undo/redo, project file, autosave.

napari-style: :class:`Project` holds the data (an immutable :class:`LabelSet`), the selection and
the history, and tells observers about changes through plain callbacks; it knows nothing of
Qt. Every edit replaces the LabelSet and pushes the previous one on the undo stack, so undo and
redo restore exact states at the cost of a reference (unchanged images are shared).

Call a Project from one thread. The GUI runs ``transfer.iter_transfer`` in a worker and hands
the results to :meth:`Project.apply_transfers` on its own thread.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from ..atomic import write_atomic
from .formats import read_labels, relative_path
from .keypoints import DONE, ImageLabels, LabelSet, Point, TransferSettings
from .transfer import apply_results, transfer_into
from .untrusted import MAX_POINTS, check_labels, count_check, load_json

PROJECT_FORMAT = "rtn-studio-project"
PROJECT_VERSION = 1
AUTOSAVE_SUFFIX = ".autosave"
HISTORY_LIMIT = 1000


@dataclass(frozen=True)
class Selection:
    """The image shown for editing and the names of its selected points."""

    image: str = ""
    names: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Change:
    """What an observer is told: ``kind`` is "labels", "selection", "history" or "file";
    ``images`` lists the paths whose labels changed (for "labels")."""

    kind: str
    images: tuple[str, ...] = ()


@dataclass
class _History:
    undo: list = field(default_factory=list)  # (description, LabelSet before)
    redo: list = field(default_factory=list)  # (description, LabelSet after)


class Project:
    """One label-transfer session: the labels, what is selected, the edit history and its files.

    ``path`` is the project file (None until saved); the autosave goes to ``path + '.autosave'``
    or, for an unsaved project, to ``autosave_path``.
    """

    def __init__(self, labels: LabelSet, path: str | None = None, autosave_path: str | None = None):
        self._labels = labels
        self.path = path
        self._autosave_path = autosave_path
        self._lock: SessionLock | None = None  # held while this untitled session owns its autosave
        self._saved = labels  # the labels as last written to ``path``
        self._autosaved = labels  # ... and to the autosave file
        self._history = _History()
        self._selection = Selection(labels.source.image)
        self._observers: list[Callable[[Change], None]] = []

    # --- observing ---------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``callback(change)`` after every change; returns a function that unsubscribes."""
        self._observers.append(callback)
        return lambda: self._observers.remove(callback)

    def _emit(self, kind: str, images: tuple[str, ...] = ()) -> None:
        for callback in list(self._observers):
            callback(Change(kind, images))

    @property
    def labels(self) -> LabelSet:
        return self._labels

    @property
    def modified(self) -> bool:
        """Whether the labels differ from the last saved project file."""
        return self._labels is not self._saved

    # --- selection ---------------------------------------------------------------------------
    @property
    def selection(self) -> Selection:
        return self._selection

    def select(self, image: str, names=()) -> None:
        """Show ``image`` for editing with the named points selected."""
        self._labels.index(image)
        self._selection = Selection(image, frozenset(names))
        self._emit("selection")

    # --- edits: each is one undo step ------------------------------------------------------
    def apply(self, description: str, change: Callable[[LabelSet], LabelSet], merge: bool = False) -> None:
        """Replace the labels with ``change(labels)`` as one undoable step called ``description``;
        ``merge`` folds it into the last step when that has the same description (the presses of a
        held arrow key undo together).

        A change that raises (e.g. ValueError for a point outside the image) leaves everything as it was.
        """
        new = change(self._labels)
        if new == self._labels:
            return
        if not (merge and self.undo_text == description):
            self._history.undo = (self._history.undo + [(description, self._labels)])[-HISTORY_LIMIT:]
        self._history.redo = []
        self._replace(new)

    def add_point(self, image: str, name: str, x: float, y: float, visibility: int = 2) -> None:
        self.apply(f"add {name}", lambda labels: labels.add_point(image, name, x, y, visibility))

    def move_points(self, image: str, names, dx: float, dy: float) -> None:
        self.apply("move points", lambda labels: labels.move_points(image, names, dx, dy))

    def place_point(self, image: str, name: str, x: float, y: float) -> None:
        self.apply(f"move {name}", lambda labels: labels.place_point(image, name, x, y))

    def set_visibility(self, image: str, names, visibility: int) -> None:
        self.apply("set visibility", lambda labels: labels.set_visibility(image, names, visibility))

    def delete_keypoints(self, names) -> None:
        self.apply("delete keypoints", lambda labels: labels.delete_keypoints(names))

    def rename_keypoint(self, old: str, new: str) -> None:
        self.apply(f"rename {old} to {new}", lambda labels: labels.rename_keypoint(old, new))

    def set_reviewed(self, images, reviewed: bool = True) -> None:
        self.apply("accept" if reviewed else "unaccept", lambda labels: labels.set_reviewed(images, reviewed))

    def add_targets(self, paths) -> None:
        self.apply("add targets", lambda labels: labels.add_targets(paths))

    def remove_targets(self, paths) -> None:
        self.apply("remove targets", lambda labels: labels.remove_targets(paths))

    def set_settings(self, settings: TransferSettings) -> None:
        self.apply("change thresholds", lambda labels: labels.with_settings(settings))

    def transfer(self, matcher, target_paths=None, progress=None, cancelled=None) -> None:
        """Transfer to ``target_paths`` (default: every unreviewed target) in this thread, as one undo step."""
        self.apply("transfer", lambda labels: transfer_into(labels, matcher, target_paths, progress, cancelled))

    def apply_transfers(self, results, info: dict, amend: bool = False) -> None:
        """Merge a worker's ``transfer_targets`` results (``info`` from ``transfer.model_info``) as one undo step;
        ``amend`` folds them into the last step instead (a correction and the re-run it started undo together)."""
        if not (amend and self._history.undo):
            self.apply(f"transfer {len(results)} images", lambda labels: apply_results(labels, results, info))
            return
        new = apply_results(self._labels, results, info)
        if new != self._labels:
            self._history.redo = []
            self._replace(new)

    # --- history -------------------------------------------------------------------------------
    @property
    def undo_text(self) -> str | None:
        """The description of the step :meth:`undo` would revert, or None."""
        return self._history.undo[-1][0] if self._history.undo else None

    @property
    def redo_text(self) -> str | None:
        return self._history.redo[-1][0] if self._history.redo else None

    def undo(self) -> None:
        if self._history.undo:
            description, before = self._history.undo.pop()
            self._history.redo.append((description, self._labels))
            self._replace(before)

    def redo(self) -> None:
        if self._history.redo:
            description, after = self._history.redo.pop()
            self._history.undo.append((description, self._labels))
            self._replace(after)

    def _replace(self, new: LabelSet) -> None:
        """Take ``new`` labels; a selection of an image or points they lack falls back first, so
        observers of the "labels" change never see a selection of something gone."""
        old, self._labels = self._labels, new
        changed = _changed_images(old, new)
        selected = self._selection
        if selected.image not in {im.image for im in new.images}:
            selected = Selection(new.source.image)
        names = {p.name for p in new.image(selected.image).points}
        if selected.names - names:
            selected = Selection(selected.image, selected.names & names)
        moved_selection, self._selection = selected != self._selection, selected
        self._emit("labels", changed)
        self._emit("history")
        if moved_selection:
            self._emit("selection")

    # --- files -------------------------------------------------------------------------------
    @property
    def autosave_path(self) -> str | None:
        return self.path + AUTOSAVE_SUFFIX if self.path else self._autosave_path

    @classmethod
    def untitled(cls, labels: LabelSet, folder: str) -> "Project":
        """A project with no file yet whose autosave is its own (two windows never share one),
        locked while this session lives so that no other session offers or deletes it."""
        os.makedirs(folder, exist_ok=True)
        autosave = os.path.join(folder, f"{UNTITLED_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}{AUTOSAVE_SUFFIX}")
        project = cls(labels, autosave_path=autosave)
        project._lock = SessionLock(autosave + LOCK_SUFFIX)
        return project

    @classmethod
    def recover(cls, autosave: str) -> "Project":
        """Reopen the autosave of an untitled session that died (see :func:`orphaned_autosaves`) as
        this session's own, modified; ValueError when a live session holds it or it is unreadable."""
        lock = SessionLock(autosave + LOCK_SUFFIX)
        try:
            project = cls(read_project(autosave), autosave_path=autosave)
        except ValueError:
            lock.release()
            raise
        project._lock, project._saved = lock, None
        return project

    def close(self) -> None:
        """End this session cleanly: an autosave with nothing unsaved in it is deleted (it would
        only be offered back later), one with unsaved work stays for recovery; the lock goes."""
        if not self.modified:
            self.discard_autosave()
        if self._lock:
            self._lock.release()
            self._lock = None

    def discard_autosave(self) -> None:
        """Delete this session's own autosave (the user discarded the changes)."""
        if self.autosave_path and os.path.exists(self.autosave_path):
            os.remove(self.autosave_path)

    def save(self, path: str | None = None) -> None:
        """Write the project file atomically (to ``path`` if given: save as) and drop the autosave.

        A failed write (full disk, no permission) raises OSError and changes nothing: the project
        keeps its old file and its autosave.
        """
        target = path or self.path
        if not target:
            raise ValueError("the project has no file yet: give a path")
        stale = self.autosave_path
        write_atomic(target, project_json(self._labels, os.path.dirname(os.path.abspath(target))))
        self.path = target
        self._saved = self._autosaved = self._labels
        for autosave in {stale, self.autosave_path}:
            if autosave and os.path.exists(autosave):
                os.remove(autosave)
        if stale != self.autosave_path:
            self.close()
        self._emit("file")

    def autosave(self) -> bool:
        """Write the autosave file atomically if anything changed since the last (auto)save.

        Call it on a timer or after each change; returns whether it wrote.
        """
        if self._labels is self._autosaved or not self.autosave_path:
            return False
        write_atomic(self.autosave_path, project_json(self._labels, os.path.dirname(os.path.abspath(self.autosave_path))))
        self._autosaved = self._labels
        return True

    @classmethod
    def open(cls, path: str, use_autosave: bool = False) -> "Project":
        """Open a project file; with ``use_autosave``, restore its newer autosave instead (marked modified)."""
        autosave = newer_autosave(path) if use_autosave else None
        project = cls(read_project(autosave or path), path)
        if autosave:
            project._saved = None
            project._autosaved = project.labels
        return project


def newer_autosave(path: str) -> str | None:
    """The autosave of project ``path`` when it exists and is at least as new as the project file.

    Saving removes the autosave, so one that outlives the project file's last write holds work
    that was never saved (the app crashed or was killed): offer to restore it.
    """
    autosave = path + AUTOSAVE_SUFFIX
    if not os.path.exists(autosave):
        return None
    if os.path.exists(path) and os.path.getmtime(autosave) < os.path.getmtime(path):
        return None
    return autosave


UNTITLED_PREFIX = "untitled-"  # untitled-<pid>-<random>.autosave in the app's autosave folder
LOCK_SUFFIX = ".lock"


class SessionLock:
    """An exclusive lock on a file, held while this object (and its process) lives.

    The operating system drops it when the process ends, even by kill -9, so a lock that can be
    taken means the session that wrote the autosave is gone. Raises ValueError when it is held.
    """

    def __init__(self, path: str):
        self.path = path
        self._stream = open(path, "a+b")
        if not _try_lock(self._stream):
            self._stream.close()
            raise ValueError(f"{os.path.basename(path)}: another RTN Studio session is using it")

    def release(self) -> None:
        if not self._stream.closed:
            self._stream.close()  # closing drops the lock
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)


def _try_lock(stream) -> bool:
    try:
        if os.name == "nt":
            import msvcrt
            msvcrt.locking(stream.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def is_live(autosave: str) -> bool:
    """Whether a running session holds ``autosave`` (its lock cannot be taken)."""
    lock_path = autosave + LOCK_SUFFIX
    if not os.path.exists(lock_path):
        return False
    with open(lock_path, "a+b") as stream:
        return not _try_lock(stream)  # closing releases a lock this check took


def orphaned_autosaves(folder: str) -> list[str]:
    """Autosaves of untitled sessions that no running session holds (it crashed or was killed),
    newest first: offer to recover them."""
    found = [p for p in glob.glob(os.path.join(glob.escape(folder), f"{UNTITLED_PREFIX}*{AUTOSAVE_SUFFIX}"))
             if not is_live(p)]
    return sorted(found, key=os.path.getmtime, reverse=True)


def describe_autosave(autosave: str) -> str:
    """One line saying what an untitled session's autosave holds and when it was written (for a
    recovery list), e.g. "cat.png: 6 keypoints, 3 targets (1 reviewed), autosaved 2026-11-27 14:05"."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(autosave)))
    try:
        labels = read_project(autosave)
    except ValueError as exc:
        return f"{os.path.basename(autosave)}, autosaved {when}: cannot be read ({exc})"
    reviewed = sum(t.reviewed for t in labels.targets)
    return (f"{os.path.basename(labels.source.image)}: {len(labels.names)} keypoints, {len(labels.targets)} "
            f"target{'s' * (len(labels.targets) != 1)}{f' ({reviewed} reviewed)' if reviewed else ''}, "
            f"autosaved {when}")


def discard_orphaned(autosave: str) -> bool:
    """Delete the autosave of a dead untitled session (the user chose not to recover it); one a
    live session holds is left alone. Returns whether it was deleted."""
    if is_live(autosave):
        return False
    for path in (autosave, autosave + LOCK_SUFFIX):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    return True


def project_json(labels: LabelSet, folder: str) -> str:
    """The project file's text; image paths are stored relative to ``folder`` (the file's own)."""
    data = labels.map_paths(lambda path: relative_path(path, folder)).to_dict()
    return json.dumps({"format": PROJECT_FORMAT, "version": PROJECT_VERSION, "labels": data},
                      indent=1, sort_keys=True) + "\n"


def read_project(path: str) -> LabelSet:
    """Read a project (or autosave) file; ValueError naming the file when it is not one."""
    name = os.path.basename(path)
    try:
        data = load_json(path)
        if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
            raise ValueError("not an RTN Studio project file")
        if not isinstance(data.get("version", 0), int) or data.get("version", 0) > PROJECT_VERSION:
            raise ValueError(f"written by a newer RTN Studio (version {data['version']})")
        labels = check_labels(LabelSet.from_dict(data["labels"]))
        if not labels.images:
            raise ValueError("holds no images")
    except OSError as exc:
        raise ValueError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    except KeyError as exc:
        raise ValueError(f"{name}: missing entry {exc.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError, OverflowError, IndexError) as exc:
        raise ValueError(f"{name}: {' '.join(str(exc).split())[:300]}") from None
    folder = os.path.dirname(os.path.abspath(path))
    return labels.map_paths(lambda stored: os.path.normpath(os.path.join(folder, stored)))


def read_fixes(path: str) -> LabelSet:
    """The points of a file of corrections for ``main.py transfer --fixed``: an RTN Studio project,
    the main window's points export (JSON), or any label file ``formats.read_labels`` reads.
    Which of its points fix a target is ``transfer.is_fix``'s to say. ValueError names the file and
    the problem."""
    data = load_json(path) if os.path.splitext(path)[1].lower() == ".json" and os.path.isfile(path) else None
    if isinstance(data, dict) and data.get("format") == PROJECT_FORMAT:
        return read_project(path)
    if isinstance(data, dict) and {"source", "target", "points"} <= data.keys():
        try:
            return check_labels(_main_window_points(data))
        except KeyError as exc:
            raise ValueError(f"{os.path.basename(path)}: missing entry {exc.args[0]!r}") from None
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ValueError(f"{os.path.basename(path)}: {' '.join(str(exc).split())[:300]}") from None
    return read_labels(path)


def _main_window_points(data: dict) -> LabelSet:
    """The main window's points export (``app.export.points_json``) as labels of its two images: a
    match placed by hand is manual, the model's keep their confidence."""
    def image(side: dict, points) -> ImageLabels:
        return ImageLabels(side["path"], (side["width"], side["height"]), tuple(points), status=DONE)

    points = data["points"]
    count_check(len(points), MAX_POINTS, "points")
    source = image(data["source"], (Point(p["name"], *map(float, p["source"]), manual=True) for p in points))
    target = image(data["target"], (Point(p["name"], *map(float, p["target"]), confidence=p["confidence"],
                                          manual=bool(p["by_hand"])) for p in points if p["target"] is not None))
    return LabelSet((source, target), tuple(p["name"] for p in points))


def _changed_images(old: LabelSet, new: LabelSet) -> tuple[str, ...]:
    """Paths whose labels differ between two states (unchanged images are shared objects)."""
    before = {im.image: im for im in old.images}
    return tuple(im.image for im in new.images if before.get(im.image) is not im) + \
        tuple(path for path in before if path not in {im.image for im in new.images})
