"""Check our COCO and CVAT exports against datumaro, the importer CVAT itself uses.

datumaro 1.13 installs cleanly beside our pins (same numpy, OpenCV headless) but adds about
330 MB (pyarrow 156 MB, pandas 79 MB, lxml, pillow, shapely), so it is not a test dependency.
Install it in a scratch environment and point this script at that Python:

    python -m venv /tmp/dmvenv
    /tmp/dmvenv/bin/pip install datumaro==1.13.12 numpy==2.4.6 opencv-python-headless==4.14.0.94
    .venv/bin/python tools/check_datumaro.py /tmp/dmvenv/bin/python

It exports a small labelled set (points on the first and last pixel centres) as a COCO dataset
folder and as CVAT XML, has datumaro import both and convert the CVAT file to COCO, then checks
that datumaro sees every point at our pixel centre + 0.5 (the continuous convention both formats
state), and that our reader reads datumaro's own COCO back to the same points. Prints one line
per check and exits 1 on the first failure.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from rtn_core.labels.formats import read_labels, write_labels  # noqa: E402
from rtn_core.labels.keypoints import DONE, VISIBLE, ImageLabels, Point, new_project  # noqa: E402

# runs inside the datumaro environment: import both exports, convert CVAT to COCO, print the points
DATUMARO_SIDE = """
import json, sys
import datumaro as dm
root = sys.argv[1]
seen = {}
for name, path, fmt in [("coco", root + "/coco", "coco_person_keypoints"), ("cvat", root + "/cvat", "cvat")]:
    dataset = dm.Dataset.import_from(path, fmt)
    names = dataset.categories()[dm.AnnotationType.label]
    seen[name] = {item.id: sorted([round(x, 3) for x in a.points] + [a.label] for a in item.annotations
                                  if a.type == dm.AnnotationType.points) for item in dataset}
    if name == "cvat":
        dataset.export(root + "/converted", "coco_person_keypoints", save_media=False)
print(json.dumps(seen))
"""


def labelled_set(folder: str):
    images = {"src.png": (40, 30), "t1.png": (64, 48)}
    for name, (width, height) in images.items():
        cv2.imwrite(os.path.join(folder, name), np.zeros((height, width, 3), np.uint8))
    path = lambda name: os.path.join(folder, name)
    source = ImageLabels(path("src.png"), (40, 30), (Point("left_eye", 39, 29), Point("nose", 0, 0)))
    target = ImageLabels(path("t1.png"), (64, 48), (Point("left_eye", 63, 47, VISIBLE, 0.8, 0.5),
                                                   Point("nose", 1.25, 2, VISIBLE, 0.3, 1.0)), status=DONE)
    return new_project(source).add_targets([target.image]).with_transfer(target).for_export()


def check(condition: bool, text: str) -> None:
    print(("ok   " if condition else "FAIL ") + text)
    if not condition:
        sys.exit(1)


def main(datumaro_python: str) -> None:
    root = tempfile.mkdtemp(prefix="check-datumaro-")
    try:
        images = os.path.join(root, "originals")
        os.makedirs(images)
        labels = labelled_set(images)
        write_labels(labels, os.path.join(root, "coco"), "coco")
        write_labels(labels, os.path.join(root, "cvat", "default.xml"), "cvat")
        for media in ("coco/images/default", "cvat/images"):  # where datumaro looks for the pictures
            shutil.copytree(images, os.path.join(root, media))
        done = subprocess.run([datumaro_python, "-c", DATUMARO_SIDE, root], capture_output=True, text=True)
        check(done.returncode == 0, "datumaro imports the COCO folder and the CVAT XML" + (
            "" if done.returncode == 0 else ": " + done.stderr.strip().splitlines()[-1]))
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        for im in labels.images:
            stem = os.path.splitext(os.path.basename(im.image))[0]
            expected = [round(p.x + 0.5, 3) for p in im.points], [round(p.y + 0.5, 3) for p in im.points]
            coco_points = seen["coco"][stem][0][:-1]
            check(coco_points[0::2] == expected[0] and coco_points[1::2] == expected[1],
                  f"COCO {stem}: datumaro sees {coco_points}, our pixel centres + 0.5")
            cvat_points = sorted(point[:2] for point in seen["cvat"][stem])
            check(cvat_points == sorted(map(list, zip(*expected))), f"CVAT {stem}: datumaro sees {cvat_points}")
        converted = os.path.join(root, "converted", "annotations", "person_keypoints_default.json")
        back = read_labels(converted)
        ours = {os.path.basename(im.image): sorted((p.x, p.y) for p in im.points) for im in labels.images}
        theirs = {os.path.basename(im.image): sorted((p.x, p.y) for p in im.points) for im in back.images}
        check(theirs == ours, "datumaro's COCO made from our CVAT reads back to our points")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
