"""Transfer: matches, confidences and forward-backward errors per point, flags, skipped targets,
manual points kept through re-runs, the `transfer` command, and accuracy on a few PF-WILLOW pairs."""
import csv
import dataclasses
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import main
from rtn_core.labels.formats import read_labels, read_source
from rtn_core.images import load_image
from rtn_core.labels.keypoints import DONE, FB_FAIL, LOW_CONFIDENCE, LR_SWAP, SKIPPED, TransferSettings
from rtn_core import coords
from rtn_core.confidence import returned_points
from rtn_core.labels.keypoints import Point
from rtn_core.matcher import Matcher
from rtn_core.model import identity_field
from rtn_core.result import Iteration
from rtn_core.labels.transfer import (apply_results, expand_targets, model_info, summary, transfer_into,
                                     transfer_targets)
from rtn_core.weights import DEFAULT_WEIGHTS

HERE = os.path.dirname(os.path.abspath(__file__))
LABELS = os.path.join(HERE, "data", "labels")
SAMPLES = os.path.normpath(os.path.join(HERE, "..", "resources", "samples"))
CAT_A, CAT_B = os.path.join(SAMPLES, "cat-chelsea.png"), os.path.join(SAMPLES, "cat-pexels-20787.jpg")
WILLOW = "/work/shared/data/pf-willow"


class FakeResult:
    """Maps points by scaling between image sizes (optionally mirrored), at a fixed confidence; its
    backward field is the inverse (in normalised units: zero, or x -> -x mirrored)."""

    def __init__(self, source_size, target_size, mirror, confidence):
        self.scale = np.array(target_size) / np.array(source_size)
        self.source_size, self.target_size = source_size, target_size
        self.target_width, self.mirror, self.fixed_confidence = target_size[0], mirror, confidence
        field = identity_field(1, 64, 64)[0]
        if mirror:
            field[4] = -2.0 * coords.grid_centres(64, 64)[..., 0]
        self.backward = Iteration(field, torch.ones(64, 64), 8)

    def map_points(self, points):
        mapped = (np.asarray(points, float) + 0.5) * self.scale - 0.5
        if self.mirror:
            mapped[:, 0] = self.target_width - 1 - mapped[:, 0]
        return mapped

    def confidence(self, points):
        return np.full(len(points), self.fixed_confidence)


class FakeMatcher:
    """A stand-in for Matcher, fast and exact, for the mechanics of transfer."""

    weights = None
    input_size = 256
    model = SimpleNamespace(backbone_name="fake", schedule=(16, 8), readout_weight=0.15)

    def __init__(self, mirror=False, confidence=0.5):
        self.mirror, self.fixed_confidence, self.calls = mirror, confidence, 0

    def prepare(self, image):
        return image

    def match(self, source, target, fixed=()):  # fixes move nothing here: the fake maps points exactly
        self.calls += 1
        return FakeResult(source.original_size, target.original_size, self.mirror, self.fixed_confidence)


@pytest.fixture
def project():
    return read_source(os.path.join(LABELS, "chelsea.csv"), CAT_A, (451, 300))


@pytest.fixture
def corrupt(tmp_path):
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(b"\xff\xd8 definitely not a jpeg")
    return str(path)


def test_each_point_gets_match_confidence_and_fb_error_and_bad_targets_are_skipped(project, corrupt):
    progress = []
    results = transfer_targets(FakeMatcher(confidence=0.9), project.source, [CAT_B, corrupt], project.settings,
                               progress=lambda done, total, path: progress.append((done, total)))
    good, bad = results
    assert good.status == DONE and good.size == (640, 426)
    nose = good.point("nose")
    assert (nose.x, nose.y) == pytest.approx(((215.5 + 0.5) * 640 / 451 - 0.5, (175.25 + 0.5) * 426 / 300 - 0.5), abs=1e-3)
    assert nose.confidence == 0.9 and nose.fb_error == pytest.approx(0, abs=1e-3) and nose.flags == ()
    assert bad.status == SKIPPED and bad.reason.startswith("corrupt.jpg: ") and bad.points == ()
    assert progress == [(1, 2), (2, 2)]


def test_thresholds_and_left_right_swaps_flag_points(project):
    mirrored = transfer_targets(FakeMatcher(mirror=True, confidence=0.05), project.source, [CAT_B],
                                TransferSettings(min_confidence=0.1))[0]
    assert LR_SWAP in mirrored.point("left_eye").flags and LR_SWAP in mirrored.point("right_ear").flags
    assert LR_SWAP not in mirrored.point("nose").flags
    assert all(LOW_CONFIDENCE in p.flags for p in mirrored.points)
    # the mirror applied in both directions cancels out: the back-mapped point returns home
    assert all(FB_FAIL not in p.flags for p in mirrored.points)


def test_cancel_stops_between_targets(project):
    matcher = FakeMatcher()
    results = transfer_targets(matcher, project.source, [CAT_B, CAT_B, CAT_B], project.settings,
                               cancelled=lambda: matcher.calls >= 2)
    assert len(results) == 2 and matcher.calls == 2  # one match per target (its backward field gives fb)


def test_retransfer_keeps_manual_points_and_reports_skips(project, corrupt, tmp_path):
    target = str(tmp_path / "cat.jpg")
    shutil.copy(CAT_B, target)
    labels = transfer_into(project, FakeMatcher(), [target, corrupt])
    labels = labels.place_point(target, "nose", 100, 100).set_reviewed([target])
    shutil.copy(corrupt, target)  # the target breaks between runs: its points must survive
    rerun = transfer_into(labels, FakeMatcher(), [target])
    assert rerun.image(target).status == SKIPPED and rerun.image(target).points == labels.image(target).points
    shutil.copy(CAT_B, target)
    rerun = transfer_into(rerun, FakeMatcher(mirror=True), [target])
    nose = rerun.image(target).point("nose")
    assert (nose.x, nose.y, nose.manual) == (100, 100, True)
    assert not rerun.image(target).reviewed  # other points moved: needs review again
    assert rerun.info["model"] == "RTN fake 256px, schedule 16/8, readout w=0.15" and rerun.info["weights_hash"] is None
    text = summary(rerun)
    assert "targets: 1 done (0 reviewed, 1 awaiting review), 1 skipped" in text
    assert "skipped corrupt.jpg: not an image" in text and "corrupt.jpg: corrupt.jpg" not in text


def test_summary_counts_reviewed_targets_and_those_awaiting_review(project, tmp_path):
    other = str(tmp_path / "other.jpg")
    shutil.copy(CAT_B, other)
    labels = transfer_into(project, FakeMatcher(confidence=0.9), [CAT_B, other])
    assert summary(labels).splitlines()[0] == "targets: 2 done (0 reviewed, 2 awaiting review), 0 skipped, 0 not run"
    labels = labels.set_reviewed([CAT_B]).add_targets([str(tmp_path / "later.jpg")])
    assert summary(labels).splitlines()[0] == "targets: 2 done (1 reviewed, 1 awaiting review), 0 skipped, 1 not run"
    assert summary(labels.set_reviewed([other])).startswith("targets: 2 done (2 reviewed, 0 awaiting review)")


def test_expand_targets_lists_images_in_folders_without_the_source(tmp_path):
    for name in ("b.png", "a.jpg", "notes.txt", "src.png"):
        (tmp_path / name).write_bytes(b"")
    found = expand_targets([str(tmp_path), str(tmp_path / "notes.txt")], str(tmp_path / "src.png"))
    assert [os.path.basename(p) for p in found] == ["a.jpg", "b.png", "notes.txt"]


@pytest.fixture(scope="module")
def untrained():
    return Matcher(weights="", device="cpu")


def test_untrained_model_transfers_inside_the_target(project, untrained):
    target = transfer_targets(untrained, project.source, [CAT_B], project.settings)[0]
    xy = np.array([[p.x, p.y] for p in target.points])
    assert target.status == DONE and len(target.points) == 5
    assert (xy >= -0.5).all() and (xy[:, 0] <= 639.5).all() and (xy[:, 1] <= 425.5).all()
    assert all(0 <= p.confidence <= 1 and np.isfinite(p.fb_error) for p in target.points)


def test_transfer_runs_the_backbone_once_per_image(project, untrained, monkeypatch):
    batches = []
    features = untrained.model.features
    monkeypatch.setattr(untrained.model, "features", lambda images: batches.append(len(images)) or features(images))
    results = transfer_targets(untrained, project.source, [CAT_B, CAT_A], project.settings)
    assert [r.status for r in results] == [DONE, DONE]
    assert batches == [1, 1, 1]  # the source, then each target: not again for the backward match


@pytest.fixture(scope="module")
def small():
    return Matcher(weights="", device="cpu", input_size=128)


def test_model_info_names_the_inference_settings_of_a_real_matcher(small, monkeypatch):
    model = small.model
    info = model_info(small)
    strides = "/".join(map(str, model.schedule))
    readout = "no readout" if model.readout_weight is None else f"readout w={model.readout_weight:g}"
    assert info["model"] == f"RTN {model.backbone_name} 128px, schedule {strides}, {readout}"
    assert info["weights"] is None and info["weights_hash"] is None
    monkeypatch.setattr(model, "schedule", (16, 8, 4))
    monkeypatch.setattr(model, "readout_weight", 0.25)
    assert model_info(small)["model"].endswith("128px, schedule 16/8/4, readout w=0.25")
    monkeypatch.setattr(model, "readout_weight", None)
    assert model_info(small)["model"].endswith(", no readout")


@pytest.mark.parametrize("fixes", [(), (Point("nose", 120.0, 300.0, manual=True),)], ids=["no fix", "one fix"])
def test_fb_error_from_the_runs_backward_field_equals_a_second_reversed_match(project, small, fixes):
    """One match per target: its backward field (with the fixes reversed) gives the fb errors a second
    match target -> source gave, within 1e-3 px."""
    target = transfer_targets(small, project.source, [CAT_B], project.settings, fixed={CAT_B: fixes})[0]
    source_image, target_image = small.prepare(load_image(CAT_A)), small.prepare(load_image(CAT_B))
    source_xy = np.array([[p.x, p.y] for p in project.source.points])
    pairs = [((p.x, p.y), (f.x, f.y)) for f in fixes for p in project.source.points if p.name == f.name]
    forward = small.match(source_image, target_image, fixed=pairs)
    target_xy = np.clip(forward.map_points(source_xy), -0.5, [639.5, 425.5])
    second = small.match(target_image, source_image, fixed=[(b, a) for a, b in pairs])
    old = np.linalg.norm(second.map_points(target_xy) - source_xy, axis=1)
    new = np.linalg.norm(returned_points(forward, target_xy) - source_xy, axis=1)
    np.testing.assert_allclose(new, old, atol=1e-3, rtol=0)
    np.testing.assert_allclose([p.fb_error for p in target.points], new, atol=1e-3, rtol=0)
    if fixes:  # the reversed fix matters: a backward run without it returns the nose elsewhere
        unfixed = dataclasses.replace(forward, backward=small.match(source_image, target_image).backward)
        nose = [p.name for p in project.source.points].index("nose")
        assert np.linalg.norm(returned_points(unfixed, target_xy)[nose] - source_xy[nose]) - old[nose] > 1.0


def test_transfer_command_exports_and_summarises(tmp_path, corrupt, capsys):
    out = str(tmp_path / "out.csv")
    code = main.main(["transfer", "--source", CAT_A, "--keypoints", os.path.join(LABELS, "chelsea_labelme.json"),
                      "--targets", CAT_B, corrupt, "--format", "csv", "--out", out, "--weights", "",
                      "--device", "cpu", "--min-confidence", "0.99"])
    printed = capsys.readouterr().out
    assert code == 0 and "targets: 1 done (0 reviewed, 1 awaiting review), 1 skipped" in printed and "skipped corrupt.jpg" in printed
    exported = read_labels(out)
    assert [os.path.basename(im.image) for im in exported.images] == ["cat-chelsea.png", "cat-pexels-20787.jpg"]
    assert exported.info["settings"]["min_confidence"] == 0.99 and exported.info["weights"] is None
    assert all(LOW_CONFIDENCE in p.flags for p in exported.images[1].points)  # every score is below 0.99


def test_transfer_command_reports_bad_keypoints_in_one_line(tmp_path, capsys):
    code = main.main(["transfer", "--source", CAT_A, "--keypoints", os.path.join(LABELS, "outside.csv"),
                      "--targets", CAT_B, "--format", "coco", "--out", str(tmp_path / "x.json")])
    assert code == 2
    assert capsys.readouterr().err.strip() == \
        "error: outside.csv: cat-chelsea.png: point (451, 35) lies outside the image (451x300 px)"


def willow_pairs(count):
    with open(os.path.join(WILLOW, "test_pairs.csv")) as stream:
        rows = list(csv.DictReader(stream))
    return rows[::len(rows) // count][:count]  # spread over the sub-classes


@pytest.mark.skipif(not os.path.isfile(DEFAULT_WEIGHTS), reason="no shipped weights yet")
@pytest.mark.skipif(not os.path.isdir(WILLOW), reason="PF-WILLOW is not available")
def test_shipped_weights_land_most_willow_keypoints_near_ground_truth(tmp_path):
    """PCK@0.10 (bbox of the target's keypoints) over 4 pairs x 10 keypoints must reach 0.5."""
    matcher, hits, total = Matcher(device="cpu"), 0, 0
    for row in willow_pairs(4):
        source_path = os.path.join(WILLOW, row["source_image"])
        csv_path = tmp_path / "source.csv"
        csv_path.write_text("name,x,y\n" + "".join(f"k{i},{row[f'XA{i}']},{row[f'YA{i}']}\n" for i in range(10)))
        labels = read_source(str(csv_path), source_path, load_image(source_path).original_size)
        target = transfer_targets(matcher, labels.source, [os.path.join(WILLOW, row["target_image"])],
                                  labels.settings)[0]
        truth = np.array([[float(row[f"XB{i}"]), float(row[f"YB{i}"])] for i in range(10)])
        found = np.array([[target.point(f"k{i}").x, target.point(f"k{i}").y] for i in range(10)])
        threshold = 0.10 * (truth.max(axis=0) - truth.min(axis=0)).max()
        hits += int((np.linalg.norm(found - truth, axis=1) <= threshold).sum())
        total += 10
    assert hits / total >= 0.5


def test_a_source_without_keypoints_and_results_for_removed_targets(project):
    empty = project.delete_keypoints(project.names)
    with pytest.raises(ValueError, match="cat-chelsea.png: no keypoints to transfer"):
        transfer_targets(FakeMatcher(), empty.source, [CAT_B], empty.settings)
    results = transfer_targets(FakeMatcher(), project.source, [CAT_B], project.settings)
    assert apply_results(project, results, {}).targets == ()  # CAT_B was never (or no longer) a target


class FailingMatcher(FakeMatcher):
    """Runs out of memory on one image (by its width), as a huge target does on a small machine."""

    def __init__(self, failing_width):
        super().__init__()
        self.failing_width = failing_width

    def prepare(self, image):
        if image.original_size[0] == self.failing_width:
            raise MemoryError()
        return image


def test_a_target_that_fails_any_way_is_skipped_and_the_rest_transferred(project, tmp_path):
    from test_inputs import png_header_only
    huge = png_header_only(tmp_path / "huge.png", 30000, 20000)
    empty_folder = tmp_path / "nothing_here"
    empty_folder.mkdir()
    targets = expand_targets([CAT_B, huge, str(empty_folder), CAT_A], CAT_A)
    assert targets[-1] == str(empty_folder)  # an explicitly named folder without images is kept, to be reported
    labels = transfer_into(project, FailingMatcher(failing_width=640), targets + [os.path.join(SAMPLES, "x.png")])
    reasons = {os.path.basename(t.image): t.reason for t in labels.targets}
    assert reasons["cat-pexels-20787.jpg"] == "cat-pexels-20787.jpg: MemoryError: "
    assert "600 megapixels" in reasons["huge.png"] and "is a folder" in reasons["nothing_here"]
    assert "no such file" in reasons["x.png"]
    text = summary(labels)
    assert "targets: 0 done, 4 skipped" in text and "skipped nothing_here: is a folder" in text


def test_transfer_command_checks_the_output_before_matching(tmp_path, capsys, monkeypatch):
    built = []
    monkeypatch.setattr("rtn_core.cli.transfer.Matcher", lambda **kwargs: built.append(kwargs))
    twin = tmp_path / "other"
    twin.mkdir()
    shutil.copy(CAT_B, twin / "cat-chelsea.png")  # the same file name as the source, in another folder
    keypoints = os.path.join(LABELS, "chelsea_labelme.json")
    blocked = tmp_path / "file"
    blocked.write_text("")
    cases = [(["--format", "csv", "--out", str(blocked / "out.csv")], "cannot be created"),
             (["--format", "cvat", "--out", str(tmp_path / "o.xml"), "--targets", str(twin / "cat-chelsea.png")],
              f"two images would both be named 'cat-chelsea.png' in the cvat export: {CAT_A} and "
              f"{twin / 'cat-chelsea.png'}"),
             (["--format", "coco", "--out", str(tmp_path / "o.json"), "--image-root", str(twin)],
              "cat-chelsea.png: not under the image root"),
             (["--format", "csv", "--out", str(tmp_path / "o.csv"), "--min-confidence", "nan"],
              "minimum confidence must be between 0 and 1, not nan")]
    for extra, message in cases:
        targets = [] if "--targets" in extra else ["--targets", CAT_B]
        code = main.main(["transfer", "--source", CAT_A, "--keypoints", keypoints, *targets, *extra])
        error = capsys.readouterr().err
        assert code == 2 and message in error and len(error.strip().splitlines()) == 1, error
    assert built == []  # every problem was found before the model was even built
