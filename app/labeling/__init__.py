"""The label-transfer window (issue 5): import or click a source's keypoints, transfer them to many
targets, review, correct and export. ``open_labeling_window(parent)`` opens it."""
from .window import LabelingWindow, open_labeling_window

__all__ = ["LabelingWindow", "open_labeling_window"]
