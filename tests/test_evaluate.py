"""PCK, benchmark readers and the evaluate command."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from main import main
from rtn_core.training.data import read_pf_pascal, read_pf_willow, read_spair
from rtn_core.training.pck import Tally, correct, reference_length
from rtn_core.weights import DEFAULT_WEIGHTS

DATA = os.path.join(os.path.dirname(__file__), "data")
PF_WILLOW = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data",
                         "pf-willow")


def test_pck_of_a_fixed_prediction_on_three_pairs():
    # Keypoint i of pair j is predicted (step_j * i + 0.25) px right of the truth.
    # Reference lengths (max side of the target keypoints' box): 100, 80, 200 px.
    pairs = read_pf_willow(os.path.join(DATA, "pf_willow"))
    tally = Tally()
    for pair, step in zip(pairs, (2, 3, 5)):
        predicted = pair.target_points + np.c_[step * np.arange(10) + 0.25, np.zeros(10)]
        length = reference_length(pair.reference, pair.target_points, (999, 999))
        tally.add(pair.category, correct(predicted, pair.target_points, length))
    # within 5/10/15 px: 3/5/8 of pair 1; within 4/8/12: 2/3/4 of pair 2; within 10/20/30: 2/4/6 of pair 3
    assert tally.keypoints == 30
    assert tally.overall() == pytest.approx({"0.05": 7 / 30, "0.10": 12 / 30, "0.15": 18 / 30})
    per_category = tally.per_category()
    assert list(per_category) == ["car(G)", "duck(S)"]
    assert per_category["car(G)"] == pytest.approx({"0.05": 5 / 20, "0.10": 8 / 20, "0.15": 12 / 20})
    assert per_category["duck(S)"] == pytest.approx({"0.05": 2 / 10, "0.10": 4 / 10, "0.15": 6 / 10})


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


def test_evaluate_command_writes_every_figure(tmp_path):
    root = tmp_path / "willow"
    shutil.copytree(os.path.join(DATA, "pf_willow"), root)
    rng = np.random.default_rng(0)
    for name in ("car(G)/a.png", "car(G)/b.png", "duck(S)/c.png", "duck(S)/d.png"):
        (root / name).parent.mkdir(exist_ok=True)
        cv2.imwrite(str(root / name), rng.integers(0, 256, (120, 240, 3), dtype=np.uint8))
    out = tmp_path / "report.json"
    assert main(["evaluate", "--root", str(root), "--weights", "", "--json", str(out), "--limit", "2"]) == 0
    report = json.loads(out.read_text())
    assert report["dataset"] == "pf-willow" and report["pairs"] == 2 and report["keypoints"] == 20
    assert report["weights"] == "untrained" and list(report["per_category"]) == ["car(G)"]
    assert len(report["per_iteration"]) == 6 and report["per_iteration"][-1] == report["pck"]
    for figures in (report["pck"], report["nearest_neighbour"], *report["per_iteration"]):
        assert set(figures) == {"0.05", "0.10", "0.15"}
    assert main(["evaluate", "--root", str(tmp_path / "none")]) == 2


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
