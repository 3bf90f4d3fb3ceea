"""Fixed correspondences (rtn_core.refine, Matcher.match(..., fixed=, start=)): exact at the fixed
points, spread to the neighbours with the known Gaussian falloff, continued from a previous result."""
import os

import numpy as np
import pytest
import torch

from rtn_core import coords
from rtn_core.images import load_image
from rtn_core.matcher import Matcher
from rtn_core.refine import impose_fixed

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources", "samples")
CHELSEA_KEYPOINTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "labels", "chelsea.csv")


def test_impose_fixed_is_exact_at_the_points_and_leaves_the_rest_alone_far_away():
    torch.manual_seed(0)
    field = torch.randn(2, 6, 24, 32)
    source_n = torch.tensor([[-0.31, 0.12], [0.42, -0.57], [0.45, -0.5]])
    offset = torch.tensor([[0.2, -0.1], [-0.3, 0.05], [0.1, 0.1]])
    fixed = impose_fixed(field, source_n, offset, falloff=0.1)
    read = torch.nn.functional.grid_sample(fixed[:, 4:6], source_n.view(1, 1, 3, 2).expand(2, 1, 3, 2),
                                           align_corners=False, padding_mode="border")[:, :, 0]
    torch.testing.assert_close(read.transpose(1, 2), offset.expand(2, 3, 2), atol=1e-4, rtol=0)
    torch.testing.assert_close(fixed[:, :4], field[:, :4])  # the local affine is left as it was
    centres = coords.grid_centres(24, 32)
    far = torch.cdist(centres.view(-1, 2), source_n).min(1).values.view(24, 32) > 0.6  # 6 sigma away
    assert far.sum() > 100
    torch.testing.assert_close(fixed[:, 4:6][..., far], field[:, 4:6][..., far], atol=1e-6, rtol=0)


def test_one_fixed_point_pulls_its_neighbours_by_the_gaussian_falloff():
    """Untrained network (its last layer is zero, so updates are zero): after a fix the translation is
    the fixed displacement times exp(-d^2 / 2 sigma^2) at a cell centre d away (known answer)."""
    rng = np.random.default_rng(1)
    source = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
    matcher = Matcher(weights="")
    plain = matcher.match(source, source)
    cell = 8.0  # the last field is on the stride-8 grid: 32 x 32 cells of a 256 px image
    fixed_at = np.array([3.5 + cell * 12, 3.5 + cell * 16])  # a cell centre
    shift = np.array([20.0, -12.0])
    falloff = 0.25
    refined = matcher.match(source, source, fixed=[(fixed_at, fixed_at + shift)], start=plain, falloff=falloff)
    assert refined.total_iterations == 3 and refined.complete  # the stride-8 steps only
    neighbours = fixed_at + cell * np.array([[0, 0], [1, 0], [2, 0], [0, -3], [4, 4], [-10, 10]])
    distance_n = np.linalg.norm(neighbours - fixed_at, axis=1) * 2.0 / 256
    expected = neighbours + shift[None] * np.exp(-distance_n ** 2 / (2 * falloff ** 2))[:, None]
    np.testing.assert_allclose(refined.map_points(neighbours), expected, atol=2e-3)
    np.testing.assert_allclose(plain.map_points(neighbours), neighbours, atol=1e-3)


def test_fixed_points_stay_put_at_every_iteration_of_the_trained_network():
    source = load_image(os.path.join(SAMPLES, "cat-chelsea.png"))
    target = load_image(os.path.join(SAMPLES, "cat-pexels-20787.jpg"))
    matcher = Matcher()
    prepared = matcher.prepare(source), matcher.prepare(target)
    fixed = [((150.0, 100.0), (400.0, 333.0)), ((300.5, 210.25), (610.0, 400.0))]
    snapshots = list(matcher.stream(*prepared, fixed=fixed))
    assert len(snapshots) == matcher.model.iterations + 1 and snapshots[-1].complete
    for k, (source_xy, target_xy) in enumerate(fixed):
        for iteration in range(len(snapshots[-1].iterations)):
            matched = snapshots[-1].map_points([source_xy], iteration)[0]
            assert np.linalg.norm(matched - target_xy) < 0.05, (k, iteration)
    plain = matcher.match(*prepared)
    continued = matcher.match(*prepared, fixed=fixed, start=plain)
    assert np.linalg.norm(continued.map_points([fixed[0][0]])[0] - fixed[0][1]) < 0.05
    others = np.array([[158.0, 106.0], [294.0, 216.0]])  # beside the fixes (falloff 0.03)
    assert not np.allclose(continued.map_points(others), plain.map_points(others))


def test_a_fixed_point_outside_its_image_is_refused_by_name():
    matcher = Matcher(weights="")
    image = np.zeros((40, 60, 3), np.uint8)
    with pytest.raises(ValueError, match=r"fixed point \(10, 70\) lies outside the target image \(60x40 px\)"):
        matcher.match(image, image, fixed=[((5.0, 5.0), (10.0, 70.0))])


def test_headless_fixed_transfer_equals_the_project_path(tmp_path):
    """``transfer --fixed FILE`` and the Label Transfer path (a point placed by hand, then a re-run of
    the target) give the same points; the project file keeps which point was fixed by hand."""
    import main
    from rtn_core.labels.formats import read_labels, read_source
    from rtn_core.labels.project import Project, read_project
    from rtn_core.labels.transfer import hand_fixed

    cat_a, cat_b = os.path.join(SAMPLES, "cat-chelsea.png"), os.path.join(SAMPLES, "cat-pexels-20787.jpg")
    keypoints = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "labels", "chelsea.csv")
    fixes = tmp_path / "fixes.csv"
    fixes.write_text("image,name,x,y\ncat-pexels-20787.jpg,nose,300.5,240.25\n")
    out = str(tmp_path / "headless.csv")
    assert main.main(["transfer", "--source", cat_a, "--keypoints", keypoints, "--targets", cat_b,
                      "--format", "csv", "--out", out, "--fixed", str(fixes)]) == 0
    headless = read_labels(out).images[1]

    project = Project(read_source(keypoints, cat_a, (451, 300)))
    project.add_targets([cat_b])
    project.add_point(cat_b, "nose", 300.5, 240.25)  # as a drag leaves it: placed by hand
    project.transfer(Matcher(), [cat_b])
    dragged = project.labels.image(cat_b)

    assert [(p.name, p.x, p.y, p.manual) for p in headless.points] == [(p.name, p.x, p.y, p.manual) for p in dragged.points]
    assert headless.point("nose").manual and (headless.point("nose").x, headless.point("nose").y) == (300.5, 240.25)

    project.save(str(tmp_path / "project.json"))
    assert hand_fixed(read_project(str(tmp_path / "project.json"))) == hand_fixed(project.labels)
    assert [p.name for p in hand_fixed(project.labels)[cat_b]] == ["nose"]


def _headless_points(tmp_path, fixes_file, name="headless.csv"):
    """``transfer --fixed fixes_file`` from the sample cat to the other sample: the target's points."""
    import main
    from rtn_core.labels.formats import read_labels
    out = str(tmp_path / name)
    assert main.main(["transfer", "--source", os.path.join(SAMPLES, "cat-chelsea.png"), "--keypoints", CHELSEA_KEYPOINTS,
                      "--targets", os.path.join(SAMPLES, "cat-pexels-20787.jpg"), "--format", "csv", "--out", out,
                      "--fixed", str(fixes_file)]) == 0
    return [(p.name, p.x, p.y, p.manual) for p in read_labels(out).images[1].points]


def test_a_project_or_its_export_as_fixes_fixes_only_the_points_placed_by_hand(tmp_path):
    """A project file and its CSV and COCO exports, given to ``transfer --fixed``, fix only the point a
    person dragged (not the transferred ones, which carry scores), so the headless run equals the
    project's own re-run."""
    from rtn_core.labels.formats import ExportOptions, read_source, write_labels
    from rtn_core.labels.project import Project

    cat_a, cat_b = os.path.join(SAMPLES, "cat-chelsea.png"), os.path.join(SAMPLES, "cat-pexels-20787.jpg")
    project = Project(read_source(CHELSEA_KEYPOINTS, cat_a, (451, 300)))
    project.add_targets([cat_b])
    matcher = Matcher()
    project.transfer(matcher, [cat_b])
    project.place_point(cat_b, "nose", 300.5, 240.25)  # the end of a drag
    project.transfer(matcher, [cat_b])  # the re-run the drag starts
    expected = [(p.name, p.x, p.y, p.manual) for p in project.labels.image(cat_b).points]
    assert [name for name, *_, manual in expected if manual] == ["nose"]

    project.save(str(tmp_path / "project.json"))
    write_labels(project.labels.for_export(), str(tmp_path / "export.csv"), "csv", ExportOptions())
    write_labels(project.labels.for_export(), str(tmp_path / "export-coco.json"), "coco", ExportOptions())
    for fixes in ("project.json", "export.csv", "export-coco.json"):
        assert _headless_points(tmp_path, tmp_path / fixes) == expected, fixes


def test_the_main_windows_points_export_gives_its_fixes_to_the_headless_transfer(tmp_path):
    """The main window's points JSON as ``--fixed``: its match placed by hand is the one fix."""
    from app.export import write_points_json
    from app.points import PointList
    from rtn_core.labels.formats import read_labels

    source, target = (load_image(os.path.join(SAMPLES, name)) for name in ("cat-chelsea.png", "cat-pexels-20787.jpg"))
    points = PointList()
    for keypoint in read_labels(CHELSEA_KEYPOINTS).images[0].points:
        points.add(keypoint.x, keypoint.y, target=(10.0, 10.0), confidence=0.5, name=keypoint.name)
    points.fix(points.points[2].id, 300.5, 240.25)  # the nose, dragged
    write_points_json(tmp_path / "main.json", points, source, target, 2)
    plain_csv = tmp_path / "nose.csv"
    plain_csv.write_text("image,name,x,y\ncat-pexels-20787.jpg,nose,300.5,240.25\n")

    from_main_window = _headless_points(tmp_path, tmp_path / "main.json", "a.csv")
    assert [name for name, *_, manual in from_main_window if manual] == ["nose"]
    assert from_main_window == _headless_points(tmp_path, plain_csv, "b.csv")


def test_a_fix_outside_its_target_is_refused_by_name_before_any_matching(tmp_path, capsys):
    import main
    fixes = tmp_path / "fixes.csv"
    fixes.write_text("image,name,x,y\ncat-pexels-20787.jpg,nose,2890,72.5\n")
    code = main.main(["transfer", "--source", os.path.join(SAMPLES, "cat-chelsea.png"), "--keypoints",
                      CHELSEA_KEYPOINTS, "--targets", os.path.join(SAMPLES, "cat-pexels-20787.jpg"), "--format",
                      "csv", "--out", str(tmp_path / "out.csv"), "--fixed", str(fixes), "--weights", "/nonexistent"])
    assert code == 2  # refused before the (missing) weights are even loaded
    assert ("fixed point 'nose' on cat-pexels-20787.jpg: point (2890, 72.5) lies outside the image (640x426 px)"
            in capsys.readouterr().err)
    assert not (tmp_path / "out.csv").exists()


def test_fixes_for_an_image_that_is_no_target_are_refused_by_name(tmp_path, capsys):
    import main
    fixes = tmp_path / "fixes.csv"
    fixes.write_text("image,name,x,y\nsomewhere-else.jpg,nose,30,20\n")
    keypoints = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "labels", "chelsea.csv")
    code = main.main(["transfer", "--source", os.path.join(SAMPLES, "cat-chelsea.png"), "--keypoints", keypoints,
                      "--targets", os.path.join(SAMPLES, "cat-pexels-20787.jpg"), "--format", "csv",
                      "--out", str(tmp_path / "out.csv"), "--fixed", str(fixes), "--weights", ""])
    assert code == 2
    assert "fixed points for somewhere-else.jpg: it is not one of the targets" in capsys.readouterr().err


def test_the_label_transfer_worker_imposes_the_points_fixed_by_hand(qtbot):
    """A re-run from the Label Transfer window (its worker) matches the target with the corrected point fixed."""
    from app.labeling.worker import TransferWorker
    from rtn_core.labels.formats import read_source
    from rtn_core.labels.transfer import hand_fixed, transfer_into
    from test_transfer import CAT_A, CAT_B, LABELS, FakeMatcher

    class Recording(FakeMatcher):
        def match(self, source, target, fixed=()):
            calls.append(list(fixed))
            return super().match(source, target, fixed)

    calls, results = [], []
    labels = transfer_into(read_source(os.path.join(LABELS, "chelsea.csv"), CAT_A, (451, 300)), FakeMatcher(), [CAT_B])
    labels = labels.place_point(CAT_B, "nose", 100.0, 90.0)  # the end of a drag
    worker = TransferWorker(matcher_factory=lambda device, weights: Recording())
    worker.result.connect(lambda job, fresh, info: results.append(fresh))
    worker.run(0, labels.source, [CAT_B], labels.settings, hand_fixed(labels))
    assert calls == [[((215.5, 175.25), (100.0, 90.0))]]  # one match: its backward field takes the fix reversed
    assert len(results) == 1 and results[0].point("nose") is not None


from test_app import image_to_widget, make_window, messages, questions, shared_matcher, wait_complete, window  # noqa: E402,F401


def test_dragging_a_match_on_the_target_resettles_the_field_and_undo_takes_it_back(window, qtbot):
    """Main window: a target marker dragged to its right place is a fix; the field re-runs from it
    (neighbours follow, the fixed match stays exactly put, its label says so); Ctrl+Z restores the field."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    points, view = window.points, window.target_view
    window.add_point(150, 100)
    window.add_point(158, 106)  # near enough to share the fixed point's field cells (falloff 0.03)
    first, second = points.points
    before = window.run.result.map_points([first.source, second.source])
    goal = (first.target[0] + 40.0, first.target[1] + 25.0)
    start, end = image_to_widget(view, *first.target), image_to_widget(view, *goal)
    QTest.mousePress(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for step in range(1, 6):
        QTest.mouseMove(view.viewport(), start + (end - start) * step / 5)
    QTest.mouseRelease(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    assert points.undo_text() == f"fix {first.name}" and first.fixed == pytest.approx(goal, abs=1.5)
    assert window.overlays.result is not None  # the old field stays up until the re-run's first iteration
    wait_complete(qtbot, window)
    result = window.run.result
    assert np.linalg.norm(result.map_point(*first.source) - np.array(first.fixed)) < 0.5
    assert np.linalg.norm(np.array(result.map_point(*second.source)) - before[1]) > 5.0  # pulled along
    assert tuple(window.overlays.target_markers.positions[0]) == pytest.approx(first.fixed, abs=1e-6)
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the whole drag is one step
    assert first.fixed is None or points.points[0].fixed is None
    wait_complete(qtbot, window)
    np.testing.assert_allclose(window.run.result.map_points([p.source for p in points.points]), before, atol=1e-3)


@pytest.mark.parametrize("reach", [float("inf"), 1.0])
def test_a_fix_anchors_the_readout_so_every_pixel_whose_features_agree_follows_it(monkeypatch, reach):
    """Known answer: the target's features are the source's shifted by 3 cells; a strong identity
    prior keeps the plain readout at the identity (wrong); one fix to its true place offers the
    shifted hypothesis, and every pixel whose shifted place lies inside the map and that lies within
    ANCHOR_REACH of the fix takes it; with the geometry gate off, the others keep the identity."""
    import rtn_core.model as model
    from rtn_core.model import identity_field, semantic_readout
    monkeypatch.setattr(model, "ANCHOR_REACH", reach)
    monkeypatch.setattr(model, "GEOMETRY_GATE", float("inf"))
    torch.manual_seed(0)
    height, width, shift = 10, 12, 3
    source = torch.nn.functional.normalize(torch.randn(1, 16, height, width), dim=1)
    target = torch.nn.functional.normalize(torch.randn(1, 16, height, width), dim=1)
    target[..., shift:] = source[..., :-shift]
    field = identity_field(1, height, width)
    plain, _ = semantic_readout(field, source, target, weight=50.0)
    assert plain[:, 4:6].abs().max() < 1e-6  # the prior wins everywhere: no pixel moves
    cells = coords.grid_centres(height, width)
    step = 2.0 / width * shift
    fixed_source = cells[4, 2]
    anchored, _ = semantic_readout(field, source, target, 50.0, (fixed_source[None], fixed_source[None] + torch.tensor([[step, 0.0]])))
    within = ((cells - fixed_source).norm(dim=-1) < reach)[:, :width - shift]
    inside = anchored[0, 4, :, :width - shift]
    assert within.any() and (reach == float("inf")) == bool(within.all())
    torch.testing.assert_close(inside, torch.where(within, step, 0.0))
    torch.testing.assert_close(anchored[0, 5], torch.zeros(height, width))


def test_a_fix_geometry_is_the_linear_map_of_the_mutual_matches_around_it():
    """Known answer: matches that follow t + (p - s) M exactly give back M; with no mutual match
    the hypothesis is the fix's translation (M = I)."""
    from rtn_core.model import anchored_hypotheses
    cells = coords.grid_centres(8, 9).reshape(-1, 2)
    s, t = torch.tensor([[0.1, -0.2]]), torch.tensor([[-0.3, 0.25]])
    linear = torch.tensor([[0.8, 0.1], [-0.2, 1.1]])
    matches = (t + (cells - s) @ linear)[None]
    noise = torch.randn_like(matches) * 0.5  # matches nobody is sure of must not count
    unsure = torch.arange(len(cells)) % 3 == 0
    matches[:, unsure] += noise[:, unsure]
    mutual = torch.where(unsure, -20.0, -0.5)[None]
    (hypothesis,) = anchored_hypotheses(cells, matches, mutual, s, t)
    torch.testing.assert_close(hypothesis[0], t + (cells - s) @ linear, atol=1e-5, rtol=0)
    (translated,) = anchored_hypotheses(cells, matches, torch.full_like(mutual, -20.0), s, t)
    torch.testing.assert_close(translated[0], t + (cells - s), atol=1e-6, rtol=0)


def test_a_fix_frees_the_pixels_whose_match_defies_the_overall_geometry_from_their_prior(monkeypatch):
    """Known answer: the target is the source shifted by 2 cells, but the first two source columns
    also find a brighter decoy where they lie, and the field says "stay" there. The plain readout
    sends them to the decoys, off the geometry every other pixel follows. With a fix elsewhere
    their prior becomes the fix's hypothesis and they reach their true place; without the gate
    (GEOMETRY_GATE infinite) the field's prior keeps the first column, whose decoys its
    neighbourhood supports best, on them."""
    import rtn_core.model as model
    height, width, shift = 8, 12, 2
    labels = torch.arange(height * width).view(height, width)
    one_hot = torch.nn.functional.one_hot(labels, height * width).permute(2, 0, 1)[None].float()
    source = one_hot
    target = torch.zeros_like(one_hot)
    target[..., shift:] = one_hot[..., :-shift]  # the twins
    target[..., shift:2 * shift] *= 0.9  # the first columns' twins are dimmer than their decoys
    target[..., :shift] = one_hot[..., :shift]  # the decoys
    step = 2.0 / width * shift
    field = model.identity_field(1, height, width)
    field[:, 4, :, shift:] = step  # "shift" everywhere but the first columns
    cells = coords.grid_centres(height, width)
    fix = (cells[4, 3][None], cells[4, 3 + shift][None])  # near the decoys: the mutual decoys bias M little
    plain, _ = model.semantic_readout(field, source, target, weight=20.0)
    torch.testing.assert_close(plain[0, 4, :, :shift], torch.zeros(height, shift))  # on the decoys
    torch.testing.assert_close(plain[0, 4, :, shift:width - shift], torch.full((height, width - 2 * shift), step))
    gated, _ = model.semantic_readout(field, source, target, 20.0, fix)
    torch.testing.assert_close(gated[0, 4, :, :width - shift], torch.full((height, width - shift), step))
    torch.testing.assert_close(gated[0, 5], torch.zeros(height, width))
    monkeypatch.setattr(model, "GEOMETRY_GATE", float("inf"))
    ungated, _ = model.semantic_readout(field, source, target, 20.0, fix)
    torch.testing.assert_close(ungated[0, 4, :, 0], torch.zeros(height))


def test_a_fix_takes_its_target_from_the_freed_pixels_unless_they_are_its_neighbours(monkeypatch):
    """Known answer: the penalty is 1 on the fix's target for a freed pixel away from the fix's
    source, 0 from EXCLUSION_RATIO x that distance on, 0 for the fix's own source cell, and 0 for
    every pixel the geometry gate did not free."""
    import rtn_core.model as model
    monkeypatch.setattr(model, "EXCLUSION_RATIO", 0.5)
    cells = torch.tensor([[0.0, 0.0], [0.4, 0.0], [0.5, 0.0], [0.6, 0.0], [-0.8, 0.0]])
    s, t = torch.tensor([[-0.8, 0.0]]), torch.tensor([[0.4, 0.0]])
    taken = model.taken_targets(cells, s, t, torch.ones(1, 5, dtype=torch.bool))[0]  # rows p, columns c
    # p = (0, 0) lies 0.8 from s: cells within 0.4 of t cost 1 - |c - t| / 0.4
    torch.testing.assert_close(taken[0], torch.tensor([0.0, 1.0, 0.75, 0.5, 0.0]))
    torch.testing.assert_close(taken[4], torch.zeros(5))  # the fix's own source cell: no penalty
    kept = model.taken_targets(cells, s, t, torch.zeros(1, 5, dtype=torch.bool))
    torch.testing.assert_close(kept, torch.zeros(1, 5, 5))


def test_a_fix_sends_a_distant_pixel_off_its_target_to_its_own_place(monkeypatch):
    """Known answer: a source pixel's 3 x 3 block is copied brighter around the fix's target (a
    look-alike) than at its own place, so the plain readout (no prior) sends it onto the fix's
    target, off the geometry every other pixel follows (the gate frees it); with the fix taking that
    target the pixel goes home, and with EXCLUSION 0 it stays."""
    import rtn_core.model as model
    height, width = 8, 12
    labels = torch.arange(height * width).view(height, width)
    source = torch.nn.functional.one_hot(labels, height * width).permute(2, 0, 1)[None].float()
    target = 0.95 * source  # every part at its own place, a little dimmer than ...
    target[..., 1:4, 7:10] = source[..., 4:7, 1:4]  # ... the look-alike of the block around (5, 2)
    cells = coords.grid_centres(height, width)
    pixel, home, look_alike = (5, 2), cells[5, 2], cells[2, 8]
    fix = (cells[2, 10][None], look_alike[None])  # a part far from the pixel belongs on the look-alike
    field = model.identity_field(1, height, width)
    plain, _ = model.semantic_readout(field, source, target, weight=0.0)
    fixed, _ = model.semantic_readout(field, source, target, 0.0, fix)
    torch.testing.assert_close(plain[0, 4:6, pixel[0], pixel[1]], look_alike - home)
    torch.testing.assert_close(fixed[0, 4:6, pixel[0], pixel[1]], torch.zeros(2))
    monkeypatch.setattr(model, "EXCLUSION", 0.0)
    unexcluded, _ = model.semantic_readout(field, source, target, 0.0, fix)
    torch.testing.assert_close(unexcluded[0, 4:6, pixel[0], pixel[1]], look_alike - home)
