"""Label files: every format round-trips, states its pixel convention, records provenance, and
bad files fail with messages naming the file."""
import csv
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from rtn_core.labels.formats import FORMATS, canonical, read_labels, read_source, write_labels
from rtn_core.labels.keypoints import ABSENT, DONE, FB_FAIL, OCCLUDED, SKIPPED, VISIBLE, ImageLabels, Point, new_project

HERE = os.path.dirname(os.path.abspath(__file__))
LABELS = os.path.join(HERE, "data", "labels")
CHELSEA = os.path.normpath(os.path.join(HERE, "..", "resources", "samples", "cat-chelsea.png"))
WIDTH, HEIGHT = 40, 30
LAST_PIXEL = (WIDTH - 1, HEIGHT - 1)


def output_path(folder, format_name):
    extension = {"coco": ".json", "labelme": "", "labelstudio": ".json", "cvat": ".xml", "csv": ".csv"}[format_name]
    return os.path.join(folder, "export", f"labels_{format_name}{extension}")


@pytest.fixture
def labels(tmp_path):
    """A source, two transferred targets (one reviewed, one with an absent point), one skipped target."""
    images = tmp_path / "images"
    source = ImageLabels(str(images / "src.png"), (WIDTH, HEIGHT), (
        Point("left_eye", *LAST_PIXEL), Point("right_eye", 0, 0), Point("nose", 20.125, 14.5, OCCLUDED)))
    project = new_project(source, skeleton=[(0, 1), (1, 2)], category="cat").add_targets(
        [str(images / name) for name in ("t1.png", "sub/t2.jpg", "bad.png")])
    project = project.with_transfer(ImageLabels(str(images / "t1.png"), (64, 48), (
        Point("left_eye", 63, 47, VISIBLE, 0.8123, 0.5), Point("right_eye", 1.5, 2.25, VISIBLE, 0.04, 9.75),
        Point("nose", 30, 20, VISIBLE, 0.5, 30.0)), status=DONE))
    project = project.with_transfer(ImageLabels(str(images / "sub" / "t2.jpg"), (20, 10), (
        Point("left_eye", 19, 9, VISIBLE, 0.9, 0.1), Point("right_eye", 2, 3, VISIBLE, 0.7, 0.2),
        Point("nose", 5, 5, VISIBLE, 0.6, 0.3)), status=DONE))
    project = project.place_point(str(images / "t1.png"), "right_eye", 10.0004, 12.3)
    project = project.set_visibility(str(images / "sub" / "t2.jpg"), ["nose"], ABSENT)
    project = project.set_reviewed([str(images / "t1.png")])
    project = project.with_transfer(ImageLabels(str(images / "bad.png"), status=SKIPPED, reason="bad.png: corrupt"))
    return replace(project, info={**project.info, "model": "RTN efficientnet-lite0 256px",
                                  "weights": "w.safetensors", "weights_hash": "0123456789abcdef"})


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_export_reads_back_equal(labels, tmp_path, format_name):
    exported = labels.for_export()
    path = output_path(str(tmp_path), format_name)
    write_labels(exported, path, format_name)
    back = read_labels(path)
    assert back == canonical(exported)
    assert [os.path.basename(im.image) for im in back.images] == ["src.png", "t1.png", "t2.jpg"]
    assert back.images[1].point("right_eye").manual and FB_FAIL in back.images[1].point("nose").flags
    assert back.images[2].point("nose") is None  # absent points are not exported
    assert back.info["weights_hash"] == "0123456789abcdef" and back.info["settings"]["min_confidence"] == 0.1


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_reviewed_only_export_and_deterministic_output(labels, tmp_path, format_name):
    first, second = output_path(str(tmp_path / "a"), format_name), output_path(str(tmp_path / "b"), format_name)
    for path in (first, second):
        write_labels(labels.for_export(reviewed_only=True), path, format_name)
    assert read_bytes(first) == read_bytes(second)
    assert [os.path.basename(im.image) for im in read_labels(first).images] == ["src.png", "t1.png"]
    assert "0123456789abcdef" in read_bytes(first).decode()


def read_bytes(path):
    """Every file of an export (sidecars included), in name order."""
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    return b"".join(open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder)))


def test_pixel_conventions_at_the_last_pixel(labels, tmp_path):
    """The source's left_eye sits on the centre of the last pixel (39, 29) of a 40x30 image."""
    exported = labels.for_export()
    paths = {name: output_path(str(tmp_path), name) for name in FORMATS}
    for name, path in paths.items():
        write_labels(exported, path, name)

    coco = json.load(open(paths["coco"]))
    assert coco["annotations"][0]["keypoints"][:3] == [39.5, 29.5, 2]  # continuous, as CVAT/datumaro write COCO
    labelme = json.load(open(os.path.join(paths["labelme"], "src.json")))
    assert labelme["shapes"][0]["points"] == [[39.5, 29.5]]  # labelme 5.5/6.3: a click on pixel (i, j) is (i+.5, j+.5)
    region = json.load(open(paths["labelstudio"]))[0]["annotations"][0]["result"][0]["value"]
    assert (region["x"], region["y"]) == (100 * 39.5 / 40, 100 * 29.5 / 30)  # percent from the corner
    assert region["x"] < 100 and region["y"] < 100
    shape = ET.parse(paths["cvat"]).getroot().find("image/points")
    assert shape.get("points") == "39.5,29.5"  # continuous: pixel i spans [i, i+1)
    row = next(csv.DictReader(open(paths["csv"])))
    assert (row["x"], row["y"]) == ("39", "29")


def test_coco_export_loads_with_pycocotools(labels, tmp_path):
    from pycocotools.coco import COCO
    path = output_path(str(tmp_path), "coco")
    write_labels(labels.for_export(), path, "coco")
    coco = COCO(path)
    category = coco.loadCats(coco.getCatIds())[0]
    assert category["keypoints"] == ["left_eye", "right_eye", "nose"] and category["skeleton"] == [[1, 2], [2, 3]]
    annotation = coco.loadAnns(coco.getAnnIds(imgIds=[3]))[0]
    assert annotation["num_keypoints"] == 2 and annotation["keypoints"][6:] == [0, 0, 0]
    assert coco.loadImgs([3])[0]["file_name"] == "t2.jpg"  # bare names by default: datumaro refuses ".."


def test_source_keypoints_from_every_import_format():
    size = (451, 300)
    from_csv = read_source(os.path.join(LABELS, "chelsea.csv"), CHELSEA, size)
    from_labelme = read_source(os.path.join(LABELS, "chelsea_labelme.json"), CHELSEA, size)
    from_coco = read_source(os.path.join(LABELS, "chelsea_coco.json"), CHELSEA, size)
    assert [p.name for p in from_csv.source.points] == ["left_eye", "right_eye", "nose", "left_ear", "right_ear"]
    assert from_csv.source.point("nose") == Point("nose", 215.5, 175.25, VISIBLE, manual=True)
    assert from_labelme.source.point("left_ear").visibility == OCCLUDED  # the rectangle is ignored
    assert from_labelme.source.image == CHELSEA and from_labelme.source.size == size
    # COCO: the image named like the source is chosen; absent ear dropped; skeleton made 0-based
    assert [p.name for p in from_coco.source.points] == ["left_eye", "right_eye", "nose", "right_ear"]
    assert from_coco.names[3] == "left_ear" and from_coco.skeleton[0] == (0, 1) and from_coco.category == "cat"


@pytest.mark.parametrize("file_name, message", [
    ("broken.json", "broken.json: not a valid label file (broken JSON at line 1"),
    ("unknown.json", "unknown.json: not a valid label file (JSON that is neither COCO"),
    ("outside.csv", "outside.csv: outside.csv: point (451, 35) lies outside the image (451x300 px)"),
    ("missing.json", "missing.json: no such file"),
])
def test_bad_keypoint_files_say_which_file_and_why(file_name, message):
    with pytest.raises(ValueError) as error:
        read_source(os.path.join(LABELS, file_name), CHELSEA, (451, 300))
    assert str(error.value).startswith(message.replace("outside.csv: outside.csv", "outside.csv: cat-chelsea.png"))


def test_unknown_extension_and_wrong_image(tmp_path):
    text = tmp_path / "points.txt"
    text.write_text("nose 1 2")
    with pytest.raises(ValueError, match=r"points.txt: .*unknown label format .txt"):
        read_labels(str(text))
    with pytest.raises(ValueError, match="chelsea_coco.json: holds 2 images and none is named dog.png"):
        read_source(os.path.join(LABELS, "chelsea_coco.json"), "dog.png", (451, 300))
    with pytest.raises(ValueError, match="unknown export format 'yaml'"):
        write_labels(read_labels(os.path.join(LABELS, "chelsea.csv")), str(tmp_path / "x.yaml"), "yaml")


def test_bad_rows_visibilities_and_unknown_sizes_are_refused(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("name,x,y\nnose,1,2\nnose,one,2\n")
    with pytest.raises(ValueError, match=r"rows.csv: not a valid csv file \(line 3: x and y must be numbers"):
        read_labels(str(rows))
    rows.write_text("name,x,y,visibility\nnose,1,2,5\n")
    with pytest.raises(ValueError, match="rows.csv: keypoint 'nose' has visibility 5, expected 0, 1 or 2"):
        read_labels(str(rows))
    unsized = read_labels(os.path.join(LABELS, "chelsea.csv"))  # name,x,y only: no image, no size
    with pytest.raises(ValueError, match="image size unknown"):
        write_labels(unsized, str(tmp_path / "out.json"), "coco")
