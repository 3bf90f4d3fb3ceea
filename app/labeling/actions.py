"""The Label Transfer window's actions and menus: every QAction with its shortcut (in
``window.actions_by_name``, plus ``window.export_actions``), the menu bar, and which apply now."""
from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from rtn_core.labels.formats import FORMATS
from rtn_core.labels.project import describe_autosave


def _action(window, text: str, slot, shortcuts=()) -> QAction:
    action = QAction(text, window)
    keys = [QKeySequence(s) for s in (shortcuts if isinstance(shortcuts, (list, tuple)) else [shortcuts])]
    action.setShortcuts(keys)
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.triggered.connect(lambda checked=False: slot())
    window.addAction(action)  # shortcuts work even for actions only in the help dialog
    return action


def build_actions(window) -> None:
    files, review, edits, transfer = window.files, window.review, window.edits, window.transfer

    def a(*args):
        return _action(window, *args)

    window.actions_by_name = n = {
        "new": a("&New Project from Source Image…", files.new_from_image_dialog, "Ctrl+N"),
        "import": a("&Import Source Keypoints…", files.import_keypoints_dialog, "Ctrl+I"),
        "open": a("&Open Project…", files.open_project_dialog, QKeySequence.StandardKey.Open),
        "save": a("&Save Project", files.save, QKeySequence.StandardKey.Save),
        "save_as": a("Save Project &As…", files.save_as_dialog, "Ctrl+Shift+S"),
        "sample": a("Open the &Sample Cat", files.open_sample),
        "close": a("&Close Window", window.close, QKeySequence.StandardKey.Close),
        "add_targets": a("Add &Target Images…", review.add_targets_dialog, "Ctrl+T"),
        "add_folder": a("Add Target &Folder…", review.add_folder_dialog, "Ctrl+Shift+T"),
        "remove_target": a("&Remove Current Target", review.remove_current_target),
        "transfer": a("&Transfer to Targets Not Run Yet", transfer.start, ["Ctrl+R", "F5"]),
        "transfer_unreviewed": a("Transfer Again to All &Unreviewed Targets", transfer.start_unreviewed,
                                 "Ctrl+Alt+R"),
        "transfer_current": a("Transfer &Current Target Again", transfer.start_current, "Ctrl+Shift+R"),
        "cancel": a("Ca&ncel Transfer (after the target being computed)", transfer.cancel, "Shift+Esc"),
        "clear_selection": a("Clear Selection", edits.clear_selection, "Esc"),
        "undo": a("&Undo", window.undo_step, QKeySequence.StandardKey.Undo),
        "redo": a("&Redo", lambda: window.undo_step(redo=True), ["Ctrl+Shift+Z", "Ctrl+Y"]),
        "next": a("Next Target", lambda: review.step(1), ["PgDown", "]"]),
        "previous": a("Previous Target", lambda: review.step(-1), ["PgUp", "["]),
        "accept": a("&Accept Target (Mark Reviewed) and Go to Next", review.accept_current, ["A", "Ctrl+Return"]),
        "accept_flagged": a("Accept Target &Even with Flagged Points", lambda: review.accept_current(force=True),
                            "Shift+A"),
        "unaccept": a("U&naccept Target", review.unaccept_current, "U"),
        "visibility": a("Cycle &Visibility of Selected (visible, occluded, absent)", edits.cycle_visibility, "V"),
        "delete": a("&Delete Selected (source: the keypoint everywhere; target: mark absent)",
                    edits.delete_selected, QKeySequence.StandardKey.Delete),
        "select_all": a("Select All Points of the Image", edits.select_all, QKeySequence.StandardKey.SelectAll),
        "fit": a("&Fit Images", window.fit_views, "F"),
        "help": a("&Keyboard and Mouse…", window.show_help, "F1"),
    }
    window.recover_menu = QMenu("&Recover Unsaved Session", window)  # one entry per session left behind
    window.recover_menu.aboutToShow.connect(lambda: _list_recoverable(window))
    n["recover"] = window.recover_menu.menuAction()
    n["worst_first"] = worst = QAction("Sort Targets &Worst First", window, checkable=True)
    worst.setShortcut(QKeySequence("W"))
    worst.toggled.connect(review.set_worst_first)
    window.addAction(worst)
    n["captions"] = captions = QAction("Show Point &Captions (names, scores, flags)", window,
                                       checkable=True, checked=True)
    captions.setShortcut(QKeySequence("C"))
    captions.toggled.connect(window.source_layer.set_captions_shown)
    captions.toggled.connect(window.target_layer.set_captions_shown)
    window.addAction(captions)
    for (dx, dy), key in (((-1, 0), "Left"), ((1, 0), "Right"), ((0, -1), "Up"), ((0, 1), "Down")):
        n[f"nudge_{key}"] = a(f"Nudge Selected {key} by 1 px", lambda dx=dx, dy=dy: edits.nudge(dx, dy), key)
        n[f"nudge_{key}_10"] = a(
            f"Nudge Selected {key} by 10 px", lambda dx=dx, dy=dy: edits.nudge(10 * dx, 10 * dy), f"Shift+{key}")
    window.export_actions = []
    for reviewed_only in (False, True):
        for name, fmt in FORMATS.items():
            action = QAction(fmt.description, window)
            action.triggered.connect(lambda _c=False, n=name, r=reviewed_only: files.export_dialog(n, r))
            window.export_actions.append((reviewed_only, action))


def _list_recoverable(window) -> None:
    """Fill File > Recover Unsaved Session with what each dead untitled session left, newest first."""
    menu, files = window.recover_menu, window.files
    menu.clear()
    for path in files.recoverable():
        menu.addAction(describe_autosave(path)).triggered.connect(
            lambda _checked=False, p=path: files.recover_unsaved(p))


def build_menus(window) -> None:
    n = window.actions_by_name
    menus = (("&File", ["new", "import", "open", "sample", None, "save", "save_as", "recover", None, "close"]),
             ("&Edit", ["undo", "redo", None, "select_all", "clear_selection", "visibility", "delete", None,
                        "nudge_Left", "nudge_Right", "nudge_Up", "nudge_Down"]),
             ("&Targets", ["add_targets", "add_folder", "remove_target", None, "transfer", "transfer_unreviewed",
                           "transfer_current", "cancel", None, "accept", "accept_flagged", "unaccept", "next",
                           "previous", None, "worst_first"]),
             ("&View", ["fit", "captions"]))
    for title, names in menus:
        menu = window.menuBar().addMenu(title)
        for name in names:
            menu.addSeparator() if name is None else menu.addAction(n[name])
    export_menu = window.menuBar().addMenu("E&xport")
    for reviewed_only, title in ((False, "All Transferred Targets"), (True, "Reviewed Targets Only")):
        sub = export_menu.addMenu(title)
        for only, action in window.export_actions:
            if only == reviewed_only:
                sub.addAction(action)
    window.menuBar().addMenu("&Help").addAction(n["help"])


def update_actions(window) -> None:
    """Enable what applies now; undo/redo say what they undo; the title says whether there are changes."""
    project = window.project
    has = project is not None
    n = window.actions_by_name
    for name in ("save", "save_as", "add_targets", "add_folder", "select_all", "visibility", "delete",
                 "transfer", "fit"):
        n[name].setEnabled(has)
    has_target = has and window.review.current is not None
    for name in ("remove_target", "transfer_current", "accept", "accept_flagged", "unaccept", "next", "previous"):
        n[name].setEnabled(has_target)
    n["transfer_unreviewed"].setEnabled(has)
    n["cancel"].setEnabled(window.transfer.running and window.cancel_button.isEnabled())
    n["undo"].setEnabled(has and project.undo_text is not None)
    n["redo"].setEnabled(has and project.redo_text is not None)
    n["undo"].setText(f"&Undo {project.undo_text}" if has and project.undo_text else "&Undo")
    n["redo"].setText(f"&Redo {project.redo_text}" if has and project.redo_text else "&Redo")
    n["recover"].setEnabled(bool(window.files.recoverable()))  # other live sessions' are not offered
    for _only, action in window.export_actions:
        action.setEnabled(has)
    for box in (window.min_confidence, window.max_fb):
        box.setEnabled(has)
    name = os.path.basename(project.path) if has and project.path else "unsaved project"
    window.setWindowTitle(f"Label transfer — {name}{' *' if has and project.modified else ''}")
