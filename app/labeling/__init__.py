"""The Label Transfer window: import or click a source's keypoints, transfer them to many targets,
review, correct and export. ``open_labeling_window(parent, source_path=..., target_paths=[...],
keypoints=[(name, x, y), ...])`` opens it, empty or already holding a pair and its points."""
from .window import LabelingWindow, open_labeling_window

__all__ = ["LabelingWindow", "open_labeling_window"]
