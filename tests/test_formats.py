"""Label files: every format round-trips, states its pixel convention, records provenance, and
bad files fail with messages naming the file."""
import csv
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from rtn_core.labels.formats import FORMATS, ExportOptions, canonical, read_labels, read_source, write_labels
from rtn_core.labels.keypoints import (ABSENT, DONE, FB_FAIL, OCCLUDED, SKIPPED, VISIBLE, ImageLabels, Point,
                                      TransferSettings, new_project)

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
    assert back.info["weights_hash"] == "0123456789abcdef" and back.info["settings"]["min_confidence"] == TransferSettings().min_confidence


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


def test_pycocotools_scores_an_export_against_itself(labels, tmp_path):
    """The export read as ground truth and, with its scores, as keypoint results: COCOeval's OKS AP is 1
    for the same points and drops when the results move by a few pixels."""
    import contextlib
    import io
    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    path = output_path(str(tmp_path), "coco")
    write_labels(labels.for_export(), path, "coco")
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(path)
    results = [{**a, "score": a.get("score", 1.0)} for a in truth.loadAnns(truth.getAnnIds())]

    def average_precision(shift):
        moved = [{**r, "keypoints": [v + shift if i % 3 != 2 and v else v for i, v in enumerate(r["keypoints"])]}
                 for r in results]
        with contextlib.redirect_stdout(io.StringIO()):
            evaluation = COCOeval(truth, truth.loadRes(moved), "keypoints")
            evaluation.params.kpt_oks_sigmas = np.full(3, 0.05)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        return evaluation.stats[0]
    assert average_precision(0) == pytest.approx(1.0)
    assert average_precision(3) < 0.5


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


def two_images(tmp_path, first="a/x.png", second="b/y.png"):
    source = ImageLabels(str(tmp_path / first), (40, 30), (Point("nose", 3, 4),))
    target = ImageLabels(str(tmp_path / second), (40, 30), (Point("nose", 5, 6, VISIBLE, 0.25, 1.0),), status=DONE)
    settings = TransferSettings(min_confidence=0.1)  # the point's 0.25 is not flagged
    return new_project(source, settings=settings).add_targets([target.image]).with_transfer(target).for_export()


def test_image_names_fit_each_tool(tmp_path):
    """COCO and CVAT: bare names, or paths under --image-root; Label Studio: local-files URLs (or a
    URL prefix); labelme and CSV: relative to the export. Our own files still read back exactly."""
    from rtn_core.labels.formats import image_reference
    labels = two_images(tmp_path, "a/x y.png", "b/sub/y.png")
    out = str(tmp_path / "out" / "labels.json")
    source = labels.source.image
    assert image_reference(source, out, "coco") == "x y.png"
    assert image_reference(labels.targets[0].image, out, "cvat", ExportOptions(str(tmp_path))) == "b/sub/y.png"
    assert image_reference(source, out, "labelstudio") == "/data/local-files/?d=" + \
        source.lstrip("/").replace(" ", "%20")
    assert image_reference(source, out, "labelstudio", ExportOptions(str(tmp_path / "a"), "https://h/img/")) == \
        "https://h/img/x%20y.png"
    assert image_reference(source, out, "csv") == "../a/x y.png"
    for format_name in FORMATS:
        path = output_path(str(tmp_path / format_name), format_name)
        write_labels(labels, path, format_name, ExportOptions(str(tmp_path)))
        assert read_labels(path) == canonical(labels), format_name


def test_coco_dataset_folder_holds_what_datumaro_expects(tmp_path):
    labels = two_images(tmp_path)
    write_labels(labels, str(tmp_path / "dataset"), "coco")
    data = json.load(open(tmp_path / "dataset" / "annotations" / "person_keypoints_default.json"))
    first, second = data["annotations"]
    assert first["segmentation"] == [] and "score" not in first and first["attributes"]["reviewed"]
    assert second["score"] == 0.25 and second["attributes"] == {"flagged": 0, "reviewed": False}
    assert [im["file_name"] for im in data["images"]] == ["x.png", "y.png"]
    assert read_labels(str(tmp_path / "dataset")) == canonical(labels)  # the folder reads back


def test_review_state_and_scores_go_where_each_format_has_a_place(tmp_path):
    labels = two_images(tmp_path)
    write_labels(labels, str(tmp_path / "ls.json"), "labelstudio")
    tasks = json.load(open(tmp_path / "ls.json"))
    assert "annotations" in tasks[0] and tasks[1]["predictions"][0]["score"] == 0.25
    assert tasks[1]["predictions"][0]["result"][0]["score"] == 0.25
    config = ET.parse(tmp_path / "ls.config.xml").getroot()  # the labelling config the tasks need
    assert config.find("KeyPointLabels").get("name") == "kp" and config.find("KeyPointLabels").get("toName") == "image"
    assert config.find("Image").get("name") == "image" and config.find("Image").get("value") == "$image"
    assert [label.get("value") for label in config.iter("Label")] == ["nose"]
    write_labels(labels, str(tmp_path / "c.xml"), "cvat")
    shape = ET.parse(tmp_path / "c.xml").getroot().findall("image")[1].find("points")
    assert shape.get("source") == "auto" and shape.find("attribute[@name='confidence']").text == "0.25"


def test_labelme_corner_origin_convention(tmp_path):
    """labelme 5.5/6.3 store a click on the centre of pixel (2, 1) as (2.5, 1.5) and accept points up to W."""
    document = {"version": "5.5.0", "flags": {}, "imagePath": "cat.png", "imageData": None, "imageWidth": 300,
                "imageHeight": 200, "shapes": [
                    {"label": "centre", "points": [[2.5, 1.5]], "shape_type": "point", "flags": {}},
                    {"label": "edge", "points": [[299.8, 0.0]], "shape_type": "point", "flags": {}}]}
    path = tmp_path / "cat.json"
    path.write_text(json.dumps(document))
    labels = read_source(str(path), str(tmp_path / "cat.png"), (300, 200))
    assert (labels.source.point("centre").x, labels.source.point("centre").y) == (2.0, 1.0)
    assert labels.source.point("edge").x == 299.3  # inside: the last pixel spans 299 to 300


def test_csv_is_plain_and_names_starting_with_hash_survive(tmp_path):
    labels = two_images(tmp_path, "#1.png", "#2.png")
    labels = labels.rename_keypoint("nose", "#nose, left")
    path = str(tmp_path / "plain.csv")
    write_labels(labels, path, "csv")
    rows = list(csv.DictReader(open(path, encoding="utf-8", newline="")))  # no options, as a spreadsheet reads it
    assert [(r["image"], r["name"]) for r in rows] == [("#1.png", "#nose, left"), ("#2.png", "#nose, left")]
    assert json.load(open(path + ".meta.json"))["names"] == ["#nose, left"]
    assert read_labels(path) == canonical(labels)
    with open(path, "rb") as stream:
        data = stream.read()
    with open(path, "wb") as stream:  # Excel's "CSV UTF-8" starts with a BOM
        stream.write(b"\xef\xbb\xbf" + data)
    assert read_labels(path) == canonical(labels)
    with open(path, "a", encoding="utf-8") as stream:  # a point added in a spreadsheet, with a new name
        stream.write("#1.png,40,30,tail,7,8,2,,,1,1,\n")
    assert read_labels(path).names == ("#nose, left", "tail")


def test_label_studio_own_export_is_read(tmp_path):
    """Label Studio's JSON export: predictions as bare ids, a task nobody labelled, uploads' URLs."""
    region = {"id": "Xy1", "type": "keypointlabels", "from_name": "kp", "to_name": "image", "original_width": 200,
              "original_height": 100, "image_rotation": 0,
              "value": {"x": 25.25, "y": 50.5, "width": 0.5, "keypointlabels": ["nose"]}}
    tasks = [{"id": 5, "data": {"image": "/data/upload/1/4f2a-cat.png"}, "predictions": [17, 18],
              "annotations": [{"id": 3, "result": [region], "was_cancelled": False}]},
             {"id": 6, "data": {"image": "/data/local-files/?d=photos/dog%201.png"}, "annotations": [],
              "predictions": []}]
    path = tmp_path / "project-1-at-2026.json"
    path.write_text(json.dumps(tasks))
    labels = read_labels(str(path))
    first, second = labels.images
    assert os.path.basename(first.image) == "4f2a-cat.png" and first.reviewed and first.size == (200, 100)
    assert (first.point("nose").x, first.point("nose").y) == (50.0, 50.0)  # 25.25% of 200 px, a corner origin
    assert os.path.basename(second.image) == "dog 1.png" and second.points == () and second.size is None
    as_source = read_source(str(path), str(tmp_path / "cat.png"), (200, 100))  # the upload named <hash>-cat.png
    assert as_source.source.point("nose").x == 50.0 and as_source.source.image == str(tmp_path / "cat.png")
    region["original_width"] = 0
    path.write_text(json.dumps(tasks))
    with pytest.raises(ValueError, match=r"project-1-at-2026.json: not a valid labelstudio file \(image size 0x100"):
        read_labels(str(path))


def test_windows_paths_in_foreign_files(tmp_path):
    coco = {"images": [{"id": 1, "file_name": "images\\train\\cat.png", "width": 50, "height": 40}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": [10.5, 20.5, 2]}],
            "categories": [{"id": 1, "name": "cat", "keypoints": ["nose"]}]}
    (tmp_path / "w.json").write_text(json.dumps(coco))
    labels = read_source(str(tmp_path / "w.json"), str(tmp_path / "cat.png"), (50, 40))
    assert labels.source.point("nose").x == 10.0
    assert read_labels(str(tmp_path / "w.json")).source.image == str(tmp_path / "images" / "train" / "cat.png")


def test_relative_paths_fall_back_to_absolute_across_drives(monkeypatch):
    from rtn_core.labels import formats

    def windows_relpath(path, start):
        raise ValueError("path is on mount 'D:', start on mount 'C:'")
    monkeypatch.setattr(formats.os.path, "relpath", windows_relpath)
    assert formats.relative_path("/data/cat.png", "/export") == "/data/cat.png"


def test_labelme_export_is_all_or_nothing(tmp_path, monkeypatch):
    from rtn_core.labels import formats
    labels = two_images(tmp_path)
    folder = tmp_path / "labelme"
    folder.mkdir()
    (folder / "x.json").write_text("old")
    written = []

    def full_disk(path, data):  # the first file fits, the second does not
        if written:
            raise OSError(28, "No space left on device")
        written.append(path)
        open(path, "w").write(data)
    monkeypatch.setattr(formats, "write_atomic", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_labels(labels, str(folder), "labelme")
    assert sorted(os.listdir(folder)) == ["x.json"] and (folder / "x.json").read_text() == "old"


def test_duplicate_file_names_are_named_before_writing(tmp_path):
    labels = two_images(tmp_path, "a/x.png", "b/x.png")
    for format_name in ("coco", "cvat", "labelme"):
        path = output_path(str(tmp_path), format_name)
        with pytest.raises(ValueError, match=rf"two images would both be named 'x.(png|json)' in the {format_name} "
                                             rf"export: {tmp_path}/a/x.png and {tmp_path}/b/x.png"):
            write_labels(labels, path, format_name)
        assert not os.path.exists(path)
    write_labels(labels, str(tmp_path / "ok.json"), "coco", ExportOptions(str(tmp_path)))  # a root tells them apart
