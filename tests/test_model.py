"""The RTN's tensor functions, the result object's coordinates and the default backbone."""
import os

import numpy as np
import pytest
import torch
import cv2

from rtn_core import coords
from rtn_core.model import (RTN, affine_neighbourhood, identity_field, local_correlation,
                            warp_by_field, window_loss)
from rtn_core.result import CorrespondenceResult, Iteration

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources", "samples")


def global_affine_field(matrix, translation, height, width):
    """Field of the global map x -> M x + t, all in feature pixels (pixel centres at integers)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    points = np.stack([xs, ys], -1)
    matches = points @ np.asarray(matrix).T + translation
    field = np.zeros((6, height, width), np.float32)
    to_normalised = np.diag([2.0 / width, 2.0 / height])
    field[:4] = (to_normalised @ np.asarray(matrix) @ np.linalg.inv(to_normalised)).reshape(4, 1, 1)
    offset = coords.pixels_to_normalised(matches, (width, height)) - coords.pixels_to_normalised(points, (width, height))
    field[4:6] = offset.transpose(2, 0, 1)
    return torch.from_numpy(field)[None]


def test_warp_by_global_affine_field_matches_cv2_warp_affine():
    rng = np.random.default_rng(0)
    feature = cv2.GaussianBlur(rng.random((40, 56)).astype(np.float32), (0, 0), 2)
    matrix, translation = np.array([[1.1, 0.15], [-0.1, 0.9]]), np.array([2.5, -1.5])
    field = global_affine_field(matrix, translation, 40, 56)
    warped = warp_by_field(torch.from_numpy(feature)[None, None], field)[0, 0].numpy()
    expected = cv2.warpAffine(feature, np.hstack([matrix, translation[:, None]]), (56, 40),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
    inner = (slice(6, -6), slice(6, -6))  # away from borders, where the two pad differently
    # OpenCV interpolates at 1/32 pixel fixed-point precision, hence the tolerance
    np.testing.assert_allclose(warped[inner], expected[inner], atol=1e-2)
    assert np.abs(warped[inner] - expected[inner]).mean() < 2e-3
    assert np.abs(warped[inner] - feature[inner]).mean() > 0.05  # the warp did move things


def test_affine_neighbourhood_follows_the_local_affine():
    feature = torch.arange(30 * 40, dtype=torch.float32).view(1, 1, 30, 40)  # value = 40 y + x
    matrix, translation = np.array([[0.8, 0.3], [0.2, 1.2]]), np.array([3.0, 2.0])
    tiles = affine_neighbourhood(feature, global_affine_field(matrix, translation, 30, 40))[0, 0]
    y, x = 10, 12
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            tx, ty = matrix @ np.array([x + dx, y + dy]) + translation
            assert tiles[3 * y + dy + 1, 3 * x + dx + 1].item() == pytest.approx(40 * ty + tx, abs=1e-3)


def test_translation_field_moves_points_by_that_translation():
    field = identity_field(1, 16, 16)
    field[:, 4:6] = torch.tensor([0.25, -0.125]).view(1, 2, 1, 1)  # normalised
    result = CorrespondenceResult((320, 240), (320, 240), [Iteration(field[0], torch.ones(16, 16), 16)])
    points = np.array([[10.0, 100.0], [300.0, 200.0], [159.5, 119.5]])
    expected = points + [0.25 * 160, -0.125 * 120]
    np.testing.assert_allclose(result.map_points(points), expected, atol=1e-3)


@pytest.mark.parametrize("dx, dy", [(2, 1), (-3, 0), (0, -4), (4, 4)])
def test_correlation_peaks_at_the_shift(dx, dy):
    torch.manual_seed(0)
    source = torch.nn.functional.normalize(torch.randn(1, 32, 20, 24), dim=1)
    target = torch.roll(source, shifts=(dy, dx), dims=(2, 3))  # target[p + d] = source[p]
    correlation = local_correlation(source, target)
    peak = correlation[0, :, 8:12, 8:12].argmax(0)
    assert (peak == (dy + 4) * 9 + (dx + 4)).all()


@pytest.mark.parametrize("source_size, target_size", [((451, 301), (333, 517)), ((1, 1), (7, 3))])
def test_identity_field_maps_points_to_themselves(source_size, target_size):
    """Same relative place in both images: exact round trip through normalised coordinates."""
    result = CorrespondenceResult(source_size, target_size,
                                  [Iteration(identity_field(1, 32, 32)[0], torch.ones(32, 32), 8)])
    width, height = source_size
    points = np.array([[0, 0], [width - 1, height - 1], [(width - 1) / 2, (height - 1) / 3]], float)
    expected = coords.normalised_to_pixels(coords.pixels_to_normalised(points, source_size), target_size)
    np.testing.assert_allclose(result.map_points(points), expected, atol=1e-3)
    same = CorrespondenceResult(source_size, source_size, result.iterations)
    np.testing.assert_allclose(same.map_points(points), points, atol=1e-3)
    np.testing.assert_allclose(same.local_affine(points), np.tile(np.eye(2), (3, 1, 1)), atol=1e-6)


def test_local_affine_in_pixel_units_recovers_a_known_warp():
    """A global affine between differently sized images comes back in original pixels."""
    source_size, target_size = (400, 300), (200, 600)
    matrix = np.array([[0.4, 0.05], [0.1, 1.8]])  # target pixels per source pixel
    translation = np.array([10.0, 20.0])
    grid = 32
    ys, xs = np.mgrid[0:grid, 0:grid]
    centres = coords.normalised_to_pixels(
        coords.pixels_to_normalised(np.stack([xs, ys], -1).astype(float), (grid, grid)), source_size)
    matches = centres @ matrix.T + translation
    field = np.zeros((6, grid, grid), np.float32)
    a_normalised = np.diag([2 / target_size[0], 2 / target_size[1]]) @ matrix @ np.diag([source_size[0] / 2, source_size[1] / 2])
    field[:4] = a_normalised.reshape(4, 1, 1)
    field[4:6] = (coords.pixels_to_normalised(matches, target_size)
                  - coords.pixels_to_normalised(centres, source_size)).transpose(2, 0, 1)
    result = CorrespondenceResult(source_size, target_size, [Iteration(torch.from_numpy(field), torch.ones(grid, grid), 8)])
    points = np.array([[50.0, 60.0], [333.3, 250.0]])
    np.testing.assert_allclose(result.map_points(points), points @ matrix.T + translation, atol=1e-2)
    np.testing.assert_allclose(result.local_affine(points), np.tile(matrix, (2, 1, 1)), atol=1e-5)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RTN()


def test_untrained_rtn_starts_and_stays_at_the_identity(model):
    images = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        steps = model(images[:1], images[1:])
    assert [s.stride for s in steps] == [16, 16, 8, 8, 8, 8]
    for step in steps:
        expected = identity_field(1, *step.field.shape[-2:])
        torch.testing.assert_close(step.field, expected)


def test_gradients_reach_the_geometric_network_and_the_field(model):
    model.zero_grad()
    torch.manual_seed(1)
    images = torch.rand(2, 3, 128, 128)
    steps = model(images[:1], images[1:])
    for step in steps[1:]:  # T^0 is the constant identity
        step.field.retain_grad()
    window_loss(steps[-1].correlation).backward()
    assert model.geometry.out.weight.grad.abs().sum() > 0
    assert steps[-1].field.grad.abs().sum() > 0
    assert steps[2].field.grad.abs().sum() > 0  # through the recurrence, across the level change


def test_default_backbone_features_recover_a_translation(model):
    """Nearest-neighbour matching of real Lite0 features between a photo and a shifted crop."""
    from rtn_core.images import load_image
    photo = load_image(os.path.join(SAMPLES, "cat-pexels-20787.jpg")).pixels
    photo = cv2.resize(photo, (384, 256), interpolation=cv2.INTER_AREA)
    shift_x, shift_y = 48, 32  # 3 and 2 feature pixels at stride 16
    source = photo[:224, :288]
    target = photo[shift_y:shift_y + 224, shift_x:shift_x + 288]
    tensors = [torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None].float() / 255 for im in (source, target)]
    with torch.no_grad():
        features = [torch.nn.functional.normalize(model.features(t)[16][0], dim=0) for t in tensors]
    channels, height, width = features[0].shape
    scores = features[0].reshape(channels, -1).T @ features[1].reshape(channels, -1)
    best = scores.argmax(1)
    matched = torch.stack([best % width, best // width], 1)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    displacement = matched - torch.stack([xs.flatten(), ys.flatten()], 1)
    inside = (xs.flatten() >= 3) & (ys.flatten() >= 2)  # source cells that are in the crop
    correct = (displacement[inside] == torch.tensor([-3, -2])).all(1).float().mean()
    assert correct > 0.8


def _one_hot_features(labels: torch.Tensor, channels: int) -> torch.Tensor:
    """(1, C, h, w) unit features: pixel (y, x) is one-hot at channel labels[y, x]."""
    return torch.nn.functional.one_hot(labels, channels).permute(2, 0, 1)[None].float()


def test_semantic_readout_moves_matches_to_the_semantic_twin_within_the_prior():
    """Each target pixel carries the label of the source pixel two columns to its left: with no
    distance cost every match lands on its twin (a known shift of 2 cells); with a large cost the
    identity field's own matches stay; the affine part is kept either way. The field comes on a
    coarser grid than the features and is read out on the features' grid."""
    from rtn_core.model import semantic_readout
    height, width = 6, 8
    labels = torch.arange(height * width).view(height, width)
    target_labels = torch.roll(labels, shifts=2, dims=1)  # target (y, x) shows source (y, x - 2)
    source, target = _one_hot_features(labels, height * width), _one_hot_features(target_labels, height * width)
    field = identity_field(1, height // 2, width // 2)
    field[:, 1] = 0.3  # an affine part that must survive
    shifted, certainty = semantic_readout(field, source, target, weight=0.0)
    assert shifted.shape == (1, 6, height, width) and certainty.shape == (1, 3, height, width)
    expected = torch.zeros(height, width, 2)
    expected[..., 0] = 2 * 2.0 / width  # two cells in normalised units
    # the twins of the last two columns wrapped round: only the others have a whole neighbourhood shifted alike
    torch.testing.assert_close(shifted[0, 4:6].permute(1, 2, 0)[:, :-2], expected[:, :-2])
    torch.testing.assert_close(shifted[:, :4], torch.nn.functional.interpolate(field[:, :4], size=(height, width)))
    # each interior twin is a certain, mutual match: log probability and entropy near 0
    assert certainty[0, 0, :, :-2].max() <= 0 and certainty[0, 0, :, :-2].min() > -0.01
    assert certainty[0, 1, :, :-2].max() < 0.01
    kept, certainty = semantic_readout(field, source, target, weight=1e3)
    assert (certainty[0, 0, :, :-2] < -5).all()  # staying put chooses cells the point does not look like
    torch.testing.assert_close(kept, identity_field(1, height, width) + torch.nn.functional.interpolate(
        field - identity_field(1, height // 2, width // 2), size=(height, width)))


def test_neighbourhood_consensus_prefers_a_match_whose_neighbours_agree():
    """Two target cells look exactly like the source cell; only one has the source's neighbours
    beside it, and consensus picks that one. The dual softmax then favours the mutual match."""
    from rtn_core.model import dual_log_softmax, neighbourhood_consensus
    height, width = 5, 5
    similarity = torch.zeros(1, height * width, height * width)
    cell = lambda y, x: y * width + x
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):  # source (2, 2) and its neighbours match target (2, 1) and its neighbours
            similarity[0, cell(2 + dy, 2 + dx), cell(2 + dy, 1 + dx)] = 1.0
    similarity[0, cell(2, 2), cell(0, 4)] = 1.0  # a lone look-alike
    consensus = neighbourhood_consensus(similarity, height, width)
    assert consensus[0, cell(2, 2)].argmax() == cell(2, 1)
    torch.testing.assert_close(consensus[0, cell(2, 2), cell(2, 1)], torch.tensor(1.0))
    torch.testing.assert_close(consensus[0, cell(2, 2), cell(0, 4)], torch.tensor(1 / 9))
    shared = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [1.0, 0.98]]])  # every source likes target 0 best;
    assert shared[0, 2].argmax() == 0 and dual_log_softmax(shared)[0, 2].argmax() == 1  # only source 2 has target 1


def test_coarse_level_borrows_stride_16_weights_and_runs_first():
    torch.manual_seed(0)
    plain, coarse = RTN(schedule=(16, 8)), RTN(schedule=(32, 16, 8))
    assert plain.state_dict().keys() == coarse.state_dict().keys()  # shipped weights load unchanged
    assert coarse.levels == [8, 16, 32]
    images = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        steps = coarse(images[:1], images[1:])
    assert [(s.stride, tuple(s.field.shape[-2:])) for s in steps] == [(32, (4, 4)), (16, (8, 8)), (8, (16, 16)),
                                                                     (8, (16, 16))]


def test_the_readout_follows_the_last_update_as_its_own_iteration(model):
    images = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        plain = model(images[:1], images[1:])
        model.readout_weight = 0.15
        try:
            read = model(images[:1], images[1:])
        finally:
            model.readout_weight = None
    assert len(read) == len(plain) + 1 == model.iterations + 2
    assert [s.readout for s in read] == [False] * len(plain) + [True]
    for a, b in zip(plain, read):
        torch.testing.assert_close(a.field, b.field)
    assert read[-1].stride == min(model.backbone.channels)  # on the semantic maps' grid


def test_geometry_residual_recovers_a_known_quadratic_map_and_singles_out_the_wrong_matches():
    """Matches follow a known quadratic map except five sent elsewhere: the robust fit finds the
    map, so the right matches lie on it and each wrong one lies as far from it as it was moved."""
    from rtn_core.model import geometry_residual, robust_fit
    cells = coords.grid_centres(12, 12).reshape(-1, 2)
    x, y = cells[:, 0], cells[:, 1]
    matches = torch.stack([0.8 * x + 0.1 * y + 0.2 * x * x - 0.05, -0.1 * x + 0.9 * y + 0.15 * y * y + 0.1], dim=1)
    wrong = torch.tensor([3, 40, 77, 100, 131])
    moved = torch.tensor([[0.6, 0.0], [0.0, -0.5], [-0.4, 0.3], [0.5, 0.5], [-0.7, 0.0]])
    matches[wrong] += moved
    residual = geometry_residual(cells, matches, torch.ones(len(cells)))
    right = torch.ones(len(cells), dtype=torch.bool)
    right[wrong] = False
    assert residual[right].max() < 2e-3
    torch.testing.assert_close(residual[wrong], moved.norm(dim=1), atol=5e-3, rtol=0)
    basis = torch.cat([x[:, None], y[:, None], torch.ones(len(cells), 1), x[:, None] ** 2, y[:, None] ** 2,
                       (x * y)[:, None]], dim=1)
    _, plain = robust_fit(basis, matches, torch.ones(len(cells)), passes=0)  # one least-squares fit: the outliers pull
    assert plain[right].max() > 10 * residual[right].max()
