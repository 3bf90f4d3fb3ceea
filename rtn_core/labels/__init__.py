"""Label transfer: the keypoint model, file formats, transfer runs and label projects."""
