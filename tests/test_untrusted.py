"""Hostile and broken label and project files: every reader answers with one line naming the file
and the problem (no traceback, hang or blow-up), and whatever it accepts survives transfer, every
writer and reading back. Named regressions first, then a property-based fuzzer over all formats."""
import copy
import json
import os
import random
import threading
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rtn_core.labels.formats import FORMATS, canonical, read_labels, read_source, write_labels
from rtn_core.labels.keypoints import DONE, OCCLUDED, VISIBLE, ImageLabels, Point, new_project
from rtn_core.labels.project import Project, project_json, read_project
from rtn_core.labels.transfer import transfer_into
from test_transfer import FakeMatcher

EXTENSION = {"coco": ".json", "labelme": "", "labelstudio": ".json", "cvat": ".xml", "csv": ".csv"}


def refused(path, reader=read_labels, match=None):
    """The one-line message ``reader`` refuses ``path`` with."""
    with pytest.raises(ValueError) as error:
        reader(str(path))
    message = str(error.value)
    assert message.startswith(os.path.basename(str(path)) + ": ") and "\n" not in message, message
    if match:
        assert match in message, message
    return message


def coco(names=("nose", "tail"), keypoints=(10.5, 20.5, 2, 3.5, 4.5, 1), width=50, skeleton=((1, 2),)):
    return {"images": [{"id": 1, "file_name": "cat.png", "width": width, "height": 40}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": list(keypoints)}],
            "categories": [{"id": 1, "name": "cat", "keypoints": list(names), "skeleton": [list(e) for e in skeleton]}]}


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
    (json.dumps(coco()).replace("10.5", "1" * 400), "400-digit integer: too large"),
    (json.dumps(coco()).replace("10.5", "Infinity"), "Infinity is not a number a label file may hold"),
    (json.dumps(coco()).replace("10.5", "1e400"), "the number 1e400 is out of range"),
    (json.dumps(coco(names=(1, 2))), "keypoint name 1 must be text"),
    (json.dumps(coco(names=("nose", ""))), "keypoint name '' must be text"),
    (json.dumps(coco(names=("nose", "nose"))), "keypoint name 'nose' appears twice"),
    (json.dumps(coco(skeleton=((0, 1),))), "skeleton edge [-1, 0] refers to no keypoint (there are 2)"),
    (json.dumps(coco(skeleton=((1, 3),))), "skeleton edge [0, 2] refers to no keypoint"),
    (json.dumps(coco(width=0)), "image size 0x40 is not positive whole pixels"),
])
def test_hostile_json_is_refused_in_one_line(tmp_path, text, message):
    path = tmp_path / "labels.json"
    path.write_text(text)
    refused(path, match=message)


def test_points_whose_labels_are_not_the_header_names_are_refused(tmp_path):
    document = {"shapes": [{"label": "nose", "points": [[1, 2]], "shape_type": "point"}], "imagePath": "a.png",
                "imageWidth": 10, "imageHeight": 10, "rtn_studio": {"names": ["beak"]}}
    (tmp_path / "a.json").write_text(json.dumps(document))
    refused(tmp_path / "a.json", match="point label 'nose' is not one of the keypoint names")


def test_duplicate_and_too_many_names_are_refused_before_the_work_grows(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("name,x,y\n" + "nose,1,2\n" * 6000)
    refused(rows, match="keypoint 'nose' appears twice")
    rows.write_text("name,x,y\n" + "".join(f"k{i},1,2\n" for i in range(200_000)))
    refused(rows, match="more than 1000 keypoint names")


def test_encodings_fifos_and_folders(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"name,x,y\nnose,1,2\nn\xe9z,3,4\n")  # Latin-1, not UTF-8
    refused(path, match="not UTF-8 text: byte 0xe9 at offset 19 (line 3) is invalid")
    path.write_bytes(b"\xef\xbb\xbfname,x,y\nnose,1,2\n")  # Excel's CSV UTF-8
    assert read_labels(str(path)).names == ("nose",)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(refused(fifo)), daemon=True)
    reader.start()
    reader.join(10)
    assert outcome and "not a regular file" in outcome[0]  # answered at once, no hang


def test_hostile_project_files_are_refused_in_one_line(tmp_path):
    labels = new_project(ImageLabels(str(tmp_path / "a.png"), (40, 30), (Point("nose", 1, 2),)))
    good = json.loads(project_json(labels, str(tmp_path)))
    path = tmp_path / "p.rtnproj"
    for change, message in [
            (lambda d: d["labels"]["info"]["settings"].update(min_confidence=float("nan")), "NaN is not a number"),
            (lambda d: d["labels"]["info"]["settings"].update(min_confidence=2), "minimum confidence must be between"),
            (lambda d: d["labels"].update(names=[7]), "keypoint name 7 must be text"),
            (lambda d: d["labels"]["images"][0].update(size=[0, 0]), "image size (0, 0)"),
            (lambda d: d["labels"].update(skeleton=[[0, 5]]), "skeleton edge [0, 5]"),
            (lambda d: d["labels"]["images"][0]["points"][0].update(confidence=3), "confidence 3.0, expected 0 to 1"),
            (lambda d: d["labels"].update(images=[]), "holds no images")]:
        data = copy.deepcopy(good)
        change(data)
        path.write_text(json.dumps(data))
        refused(path, read_project, message)
    path.write_text('{"format": "rtn-studio-project", "labels": ' + "[" * 50_000 + "]" * 50_000 + "}")
    refused(path, read_project, "JSON nested too deeply")


# --- the fuzzer ------------------------------------------------------------------------------------
NASTY = [10 ** 400, float("inf"), float("nan"), -1, 0, 1e308, 2.5, "", " ", "#", "nose", "a\x00b", "\ufeff",
         [], {}, None, True, [0, 0, 2], {"x": 1}, "../../etc/passwd", "C:\\data\\x.png", "DEEP"]
NAME = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=8).filter(
    str.strip)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A 64x48 source and a 32x24 target on disk, for the transfer the accepted files go through."""
    folder = tmp_path_factory.mktemp("fuzz_images")
    paths = {}
    for name, (width, height) in {"src.png": (64, 48), "dst.png": (32, 24)}.items():
        paths[name] = str(folder / name)
        cv2.imwrite(paths[name], np.random.default_rng(1).integers(0, 255, (height, width, 3), np.uint8))
    return paths


@st.composite
def label_sets(draw, folder):
    names = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    coordinate = lambda limit: st.floats(-0.5, limit - 0.5, allow_nan=False).map(lambda v: round(v, 3))
    points = tuple(Point(name, draw(coordinate(64)), draw(coordinate(48)), draw(st.sampled_from([VISIBLE, OCCLUDED])))
                   for name in names if draw(st.booleans()) or name == names[0])
    source = ImageLabels(os.path.join(folder, "src.png"), (64, 48), points)
    target = ImageLabels(os.path.join(folder, "dst.png"), (32, 24), tuple(
        Point(p.name, p.x / 2, p.y / 2, VISIBLE, draw(st.floats(0, 1)), draw(st.floats(0, 100)))
        for p in points), status=DONE)
    return new_project(source, names).add_targets([target.image]).with_transfer(target).for_export()


def mutate_json(data, rng):
    """Replace one node of a JSON tree with a nasty value."""
    nodes = [(None, None)]
    stack = [data]
    while stack:
        node = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            nodes.append((node, key))
            stack.append(child)
    parent, key = rng.choice(nodes[1:]) if len(nodes) > 1 else (None, None)
    if parent is not None:
        parent[key] = copy.deepcopy(rng.choice(NASTY))
    return data


def mutated(path, format_name, rng):
    """Write a mutated copy of the export at ``path`` back in place (the file, or one labelme file)."""
    if os.path.isdir(path):
        path = os.path.join(path, rng.choice(sorted(os.listdir(path))))
    data = open(path, "rb").read()
    kind = rng.randrange(3)
    if kind == 0 and path.endswith(".json"):
        text = json.dumps(mutate_json(json.loads(data), rng), allow_nan=True)
        data = text.replace('"DEEP"', "[" * 5000 + "]" * 5000).encode()
    elif kind == 0 and path.endswith(".xml"):
        root = ET.fromstring(data)
        element = rng.choice([e for e in root.iter() if e.attrib] or [root])
        element.set(rng.choice(sorted(element.attrib) or ["x"]), str(rng.choice(NASTY))[:40])
        data = ET.tostring(root)
    elif kind == 0:  # CSV: one cell
        lines = data.decode().split("\n")
        row = rng.randrange(len(lines))
        cells = lines[row].split(",")
        cells[rng.randrange(len(cells))] = str(rng.choice(NASTY))[:40]
        lines[row] = ",".join(cells)
        data = "\n".join(lines).encode()
    elif kind == 1:  # bytes: flip, cut or insert
        at = rng.randrange(len(data))
        data = rng.choice([data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1:], data[:at],
                           data[:at] + rng.choice([b"\xff", b"\xef\xbb\xbf", b"\x00", b"#", b"\n"]) + data[at:]])
    with open(path, "wb") as stream:
        stream.write(data)


def survives(labels, folder, images):
    """Accepted labels: every writer writes them and reads them back; as a source they transfer."""
    exported = labels.for_export()
    for format_name in FORMATS:
        out = os.path.join(folder, "again", format_name + EXTENSION[format_name])
        try:
            write_labels(exported, out, format_name)
        except ValueError as exc:  # e.g. a foreign file without image sizes: refused in one line
            assert "\n" not in str(exc)
            continue
        assert read_labels(out) == canonical(exported), format_name


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), format_name=st.sampled_from(sorted(FORMATS) + ["project"]), seed=st.integers(0, 2 ** 32))
def test_fuzzed_files_are_refused_in_one_line_or_survive_everything(tmp_path_factory, images, data, format_name, seed):
    folder = str(tmp_path_factory.mktemp("fuzz"))
    labels = data.draw(label_sets(os.path.dirname(images["src.png"])))
    rng = random.Random(seed)
    if format_name == "project":
        path = os.path.join(folder, "p.rtnproj")
        with open(path, "w") as stream:
            stream.write(project_json(labels, folder))
        reader = read_project
    else:
        path = os.path.join(folder, "labels" + EXTENSION[format_name])
        write_labels(labels, path, format_name)
        reader = read_labels
    mutated(path, format_name, rng)
    try:
        accepted = reader(path)
    except ValueError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(os.path.basename(path) + ": "), str(exc)
        event(f"{format_name}: refused")
        return
    event(f"{format_name}: accepted")
    survives(accepted, folder, images)
    if format_name == "project":
        Project(accepted).save(os.path.join(folder, "saved.rtnproj"))
        return
    try:
        project = read_source(path, images["src.png"], (64, 48))
    except ValueError as exc:  # e.g. its points lie outside the source
        assert "\n" not in str(exc)
        return
    transferred = transfer_into(project, FakeMatcher(), [images["dst.png"]])
    assert transferred.image(images["dst.png"]).status == DONE
    survives(transferred, folder, images)
