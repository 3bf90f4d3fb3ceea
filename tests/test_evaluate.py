"""PCK, benchmark readers and the evaluate command."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from main import main
from rtn_core.confidence import FEATURES
from rtn_core.training.data import read_pf_pascal, read_pf_willow, read_semcorr, read_spair
from rtn_core.training.evaluate import PointRecords, summarise
from rtn_core.training.pck import pck, reference_length, relative_error
from rtn_core.weights import DEFAULT_WEIGHTS

DATA = os.path.join(os.path.dirname(__file__), "data")
PF_WILLOW = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                         "pf-willow")


def test_pck_of_a_fixed_prediction_on_three_pairs():
    # Keypoint i of pair j is predicted (step_j * i + 0.25) px right of the truth.
    # Reference lengths (max side of the target keypoints' box): 100, 80, 200 px.
    pairs = read_pf_willow(os.path.join(DATA, "pf_willow"))
    errors = []
    for pair, step in zip(pairs, (2, 3, 5)):
        predicted = pair.target_points + np.c_[step * np.arange(10) + 0.25, np.zeros(10)]
        length = reference_length(pair.reference, pair.target_points, (999, 999))
        errors.append(relative_error(predicted, pair.target_points, length))
    records = PointRecords(np.full(30, "all"), np.repeat([p.category for p in pairs], 10),
                           np.stack([np.full(30, 9.0), np.concatenate(errors)], axis=1), np.zeros(30), np.zeros((30, 6)))
    report = summarise(records, pairs)
    # within 5/10/15 px: 3/5/8 of pair 1; within 4/8/12: 2/3/4 of pair 2; within 10/20/30: 2/4/6 of pair 3
    assert report["keypoints"] == 30 and "per_subset" not in report
    assert report["pck"] == pytest.approx({"0.05": 7 / 30, "0.10": 12 / 30, "0.15": 18 / 30})
    assert report["per_iteration"][0] == {"0.05": 0.0, "0.10": 0.0, "0.15": 0.0}
    assert report["nearest_neighbour"] == {"0.05": 1.0, "0.10": 1.0, "0.15": 1.0}
    assert list(report["per_category"]) == ["car(G)", "duck(S)"]
    assert report["per_category"]["car(G)"] == pytest.approx({"0.05": 5 / 20, "0.10": 8 / 20, "0.15": 12 / 20})
    assert report["per_category"]["duck(S)"] == pytest.approx({"0.05": 2 / 10, "0.10": 4 / 10, "0.15": 6 / 10})


def test_semcorr_reader_keeps_the_filled_slots_and_each_subsets_normalisation():
    root = os.path.join(DATA, "semcorr")
    pairs = read_semcorr(root)
    assert [(p.category, p.subset, os.path.relpath(p.target, root)) for p in pairs] == [
        ("dog(StanfordExtra)", "stanfordextra-sample", "dogs/b.jpg"),
        ("car(FlowWeb)", "flowweb-pascal-car", "cars/d.jpg"),
        ("aeroplane(SPair)", "spair71k-test", "spair/f.jpg")]
    assert pairs[0].source_points.tolist() == [[1, 2], [3, 4], [5, 6]]  # slot 3 is empty in the target
    assert pairs[0].target_points.tolist() == [[11, 12], [13, 14], [15, 16]]
    assert pairs[1].target_points.tolist() == [[40, 50], [41, 51.25]]
    assert pairs[2].source_points.tolist() == [[0, 0], [2, 2]]  # slots 0 and 29
    assert [p.reference for p in pairs] == [100.0, "image", 200.0]  # box max side / image / box max side


def test_semcorr_pck_is_per_subset_and_the_headline_is_their_unweighted_mean():
    pairs = read_semcorr(os.path.join(DATA, "semcorr"))
    # predictions off by these many pixels along x; the FlowWeb target image is 150 x 108 px
    offsets = [[4, 8, 12], [6, 30], [25, 5]]  # relative: .04 .08 .12 | .04 .20 | .125 .025
    errors, nearest = [], []
    for pair, shift in zip(pairs, offsets):
        length = reference_length(pair.reference, pair.target_points, (150, 108))
        predicted = pair.target_points + np.c_[shift, np.zeros(len(shift))]
        errors.append(relative_error(predicted, pair.target_points, length))
        nearest.append(np.full(len(shift), 0.07))
    subsets = np.concatenate([[p.subset] * len(o) for p, o in zip(pairs, offsets)])
    categories = np.concatenate([[p.category] * len(o) for p, o in zip(pairs, offsets)])
    error = np.concatenate(errors)
    report = summarise(PointRecords(subsets, categories, np.stack([error + 1, error], 1),
                                    np.concatenate(nearest), np.zeros((7, 6))), pairs)
    per_subset = report["per_subset"]
    assert list(per_subset) == ["stanfordextra-sample", "flowweb-pascal-car", "spair71k-test"]
    assert per_subset["stanfordextra-sample"]["pck"] == pytest.approx({"0.05": 1 / 3, "0.10": 2 / 3, "0.15": 1.0})
    assert per_subset["flowweb-pascal-car"]["pck"] == pytest.approx({"0.05": 0.5, "0.10": 0.5, "0.15": 0.5})
    assert per_subset["spair71k-test"]["pck"] == pytest.approx({"0.05": 0.5, "0.10": 0.5, "0.15": 1.0})
    assert per_subset["spair71k-test"]["keypoints"] == 2 and per_subset["spair71k-test"]["pairs"] == 1
    # 7 points pooled would give 3/7, 4/7, 6/7; the headline weighs each subset the same
    assert report["pck"] == pytest.approx({"0.05": (1 / 3 + 1) / 3, "0.10": (2 / 3 + 1) / 3, "0.15": 2.5 / 3})
    assert report["per_iteration"][-1] == report["pck"]
    assert report["per_iteration"][0] == pytest.approx({"0.05": 0.0, "0.10": 0.0, "0.15": 0.0})
    assert report["nearest_neighbour"] == pytest.approx({"0.05": 0.0, "0.10": 1.0, "0.15": 1.0})
    assert pck([]) == {"0.05": 0.0, "0.10": 0.0, "0.15": 0.0}


def test_pf_willow_reader_parses_the_sample_exactly():
    root = os.path.join(DATA, "pf_willow")
    pairs = read_pf_willow(root)
    assert [(p.category, os.path.relpath(p.source, root), os.path.relpath(p.target, root)) for p in pairs] == [
        ("car(G)", "car(G)/a.png", "car(G)/b.png"), ("car(G)", "car(G)/b.png", "car(G)/a.png"),
        ("duck(S)", "duck(S)/c.png", "duck(S)/d.png")]
    assert pairs[0].source_points.tolist() == [[10.0 * i, 5.0 * i] for i in range(10)]
    assert pairs[2].source_points.tolist() == [[3.5, 7.25]] * 10
    assert pairs[1].target_points[:2].tolist() == [[10, 0], [50, 80]]
    assert reference_length(pairs[1].reference, pairs[1].target_points, (1, 1)) == 80


def test_pf_pascal_reader_parses_the_sample_exactly():
    pairs = read_pf_pascal(os.path.join(DATA, "pf_pascal", "test_pairs.csv"), "/pascal")
    assert [(p.category, p.source, p.target) for p in pairs] == [
        ("aeroplane", "/pascal/JPEGImages/2009_002457.jpg", "/pascal/JPEGImages/2010_003342.jpg"),
        ("dog", "/pascal/JPEGImages/2008_000140.jpg", "/pascal/JPEGImages/2008_003547.jpg")]
    assert pairs[0].source_points.tolist() == [[10, 11], [20, 21], [30, 31]]  # 1-based -> 0-based
    assert pairs[0].target_points.tolist() == [[100, 101], [200, 201], [300, 301]]
    assert pairs[1].source_points.tolist() == [[0.5, 2.5], [1.5, 3.5]]
    assert reference_length(pairs[1].reference, pairs[1].target_points, (500, 375)) == 500


def test_spair_reader_parses_the_sample_exactly():
    pair = read_spair(os.path.join(DATA, "spair", "000001-2008_000585-2009_004193-aeroplane.json"), "/spair")
    assert pair.category == "aeroplane"
    assert pair.source == "/spair/JPEGImages/aeroplane/2008_000585.jpg"
    assert pair.target == "/spair/JPEGImages/aeroplane/2009_004193.jpg"
    assert pair.source_points.tolist() == [[12, 190], [146, 157], [486, 170]]
    assert pair.target_points.tolist() == [[43, 190], [168, 158], [460, 174]]
    assert pair.reference == 426.0  # max side of trg_bndbox


def test_readers_reject_malformed_files(tmp_path):
    (tmp_path / "test_pairs.csv").write_text("category,source_image,target_image,XA0\ncar,a.png,b.png,1\n")
    with pytest.raises(ValueError, match="line 2"):
        read_pf_willow(str(tmp_path))
    bad = tmp_path / "pascal.csv"
    bad.write_text("source_image,target_image,class,XA,YA,XB,YB\na,b,1,1;2,1,1;2,1;2\n")
    with pytest.raises(ValueError, match="differ"):
        read_pf_pascal(str(bad), str(tmp_path))
    (tmp_path / "pair.json").write_text("{}")
    with pytest.raises(ValueError, match="SPair"):
        read_spair(str(tmp_path / "pair.json"), str(tmp_path))
    with pytest.raises(ValueError, match="missing"):
        read_pf_willow(str(tmp_path / "nowhere"))


def _random_images(root, names, size=(120, 240)):
    rng = np.random.default_rng(0)
    for name in names:
        (root / name).parent.mkdir(exist_ok=True)
        cv2.imwrite(str(root / name), rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def test_evaluate_command_writes_every_figure(tmp_path):
    root = tmp_path / "willow"
    shutil.copytree(os.path.join(DATA, "pf_willow"), root)
    _random_images(root, ("car(G)/a.png", "car(G)/b.png", "duck(S)/c.png", "duck(S)/d.png"))
    out = tmp_path / "report.json"
    assert main(["evaluate", "--root", str(root), "--weights", "", "--json", str(out), "--limit", "2"]) == 0
    report = json.loads(out.read_text())
    assert report["dataset"] == "pf-willow" and report["pairs"] == 2 and report["keypoints"] == 20
    assert report["weights"] == "untrained" and list(report["per_category"]) == ["car(G)"]
    assert len(report["per_iteration"]) == 6 and report["per_iteration"][-1] == report["pck"]
    for figures in (report["pck"], report["nearest_neighbour"], *report["per_iteration"]):
        assert set(figures) == {"0.05", "0.10", "0.15"}
    confidence = report["confidence"]
    assert confidence["points"] == 20 and confidence["score"] == "window-softmax peak"
    assert sum(b["points"] for b in confidence["reliability"]) == 20
    assert cv2.imread(str(tmp_path / "report.png")) is not None  # the reliability diagram
    assert main(["evaluate", "--root", str(tmp_path / "none")]) == 2
    # the confidence is never fitted on the test set
    assert main(["evaluate", "--root", str(root), "--fit-confidence", str(tmp_path / "c.json")]) == 2


def test_evaluate_semcorr_fits_a_calibration_that_result_confidence_uses(tmp_path):
    root = tmp_path / "semcorr"
    shutil.copytree(os.path.join(DATA, "semcorr"), root)
    _random_images(root, ("dogs/a.jpg", "dogs/b.jpg", "cars/c.jpg", "spair/e.jpg"))
    _random_images(root, ("cars/d.jpg", "spair/f.jpg"), size=(108, 150))
    out, fitted = tmp_path / "report.json", tmp_path / "calibration.json"
    assert main(["evaluate", "--dataset", "semcorr-val", "--root", str(root), "--weights", "",
                 "--json", str(out), "--fit-confidence", str(fitted)]) == 0
    report = json.loads(out.read_text())
    assert report["keypoints"] == 7 and set(report["per_subset"]) == {
        "stanfordextra-sample", "flowweb-pascal-car", "spair71k-test"}
    means = [np.mean([s["pck"][k] for s in report["per_subset"].values()]) for k in ("0.05", "0.10", "0.15")]
    assert list(report["pck"].values()) == pytest.approx(means)
    settings = json.loads(fitted.read_text())
    calibration = settings["confidence"]
    assert settings["schedule"] == [16, 16, 8, 8, 8] and settings["weights"] == "untrained"
    assert calibration["features"] == list(FEATURES) and "review_below" in calibration
    assert report["confidence"]["score"] == "calibrated probability"
    assert report["confidence"]["threshold"] == calibration["review_below"]
    assert set(report["confidence"]["default_caught_per_subset"]) <= set(report["per_subset"])


@pytest.mark.skipif(not os.path.isfile(DEFAULT_WEIGHTS), reason="no weights ship yet")
@pytest.mark.skipif(not os.path.isdir(PF_WILLOW), reason="PF-WILLOW is not beside the project")
def test_shipped_weights_beat_the_untrained_network(tmp_path):
    figures = {}
    for name, weights in (("shipped", []), ("untrained", ["--weights", ""])):
        out = tmp_path / f"{name}.json"
        assert main(["evaluate", "--root", PF_WILLOW, "--limit", "10", "--device", "cpu",
                     "--json", str(out), *weights]) == 0
        figures[name] = json.loads(out.read_text())["pck"]["0.10"]
    assert figures["shipped"] > figures["untrained"] + 0.2


def test_evaluate_fixed_prints_the_other_keypoints_curve_to_four_decimals(tmp_path, capsys):
    """``evaluate --fixed K`` on two real PF-WILLOW pairs: k = 0 is the plain evaluation of the same
    pairs, each k leaves its k fixed keypoints out of the count, and the printed change against
    k = 0 is exact to four decimals (the issue's floor is +0.05 at k = 1)."""
    plain, fixed = tmp_path / "plain.json", tmp_path / "fixed.json"
    common = ["evaluate", "--dataset", "pf-willow", "--root", PF_WILLOW, "--limit", "2", "--device", "cpu"]
    assert main(common + ["--json", str(plain)]) == 0
    assert main(common + ["--fixed", "2", "--json", str(fixed)]) == 0
    curve = json.loads(fixed.read_text())["curve"]
    assert [row["keypoints"] for row in curve] == [20, 18, 16]
    assert curve[0]["pck_without_fix"] == curve[0]["pck_with_fix"] == json.loads(plain.read_text())["pck"]
    printed = capsys.readouterr().out
    for row in curve[1:]:
        gain = row["pck_with_fix"]["0.10"] - curve[0]["pck_with_fix"]["0.10"]
        assert f"{row['pck_with_fix']['0.10']:10.4f}{row['pck_with_fix']['0.10'] - row['pck_without_fix']['0.10']:+10.4f}" \
               f"{gain:+10.4f}" in printed
