"""Synthetic warps, data sets and the training loop, on tiny generated data (64 px inputs)."""
import math
import os

import cv2
import numpy as np
import pytest
import torch

from rtn_core import coords
from rtn_core.training import synthetic
from rtn_core.training.data import ImageStore, Photo, box_mask, pets_photos
from rtn_core.model import identity_field
from rtn_core.training.train import Trainer, box_hits, learning_rate_scale, load_config


def test_warp_flow_agrees_with_remapped_image():
    # A target whose pixels hold their own (x, y): the warped source then shows each pixel's match.
    height, width = 48, 64
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    target = np.dstack([xs, ys, np.zeros_like(xs)])
    warp = synthetic.random_warp(np.random.default_rng(3))
    source, _ = synthetic.warp_image(target, warp)
    flow, mask = synthetic.flow_on_grid(warp, height, width)
    matches = coords.grid_centres(height, width).numpy() + flow.transpose(1, 2, 0)
    expected = coords.normalised_to_pixels(matches.astype(np.float64), (width, height))
    assert 0.3 < mask.mean() < 1.0
    # beyond the outermost pixel centres remap reflects the border: compare inside them
    inside = mask.astype(bool) & (expected >= 0).all(-1) & (expected <= [width - 1, height - 1]).all(-1)
    assert np.abs(source[..., :2][inside] - expected[inside]).max() < 0.05  # remap's 1/32 px steps


def test_flow_on_a_coarse_grid_is_the_fine_flow_at_cell_centres():
    warp = synthetic.random_warp(np.random.default_rng(4))
    fine, _ = synthetic.flow_on_grid(warp, 64, 64)
    coarse, _ = synthetic.flow_on_grid(warp, 8, 8)
    centres = torch.from_numpy(coords.grid_centres(8, 8).numpy())[None]
    sampled = torch.nn.functional.grid_sample(torch.from_numpy(fine)[None], centres, align_corners=False)[0]
    assert np.abs(sampled.numpy() - coarse).max() < 1e-3


def test_identity_warp_ranges_give_zero_flow():
    params = synthetic.WarpParams(scale=(1.0, 1.0), rotation=0.0, shear=0.0, translation=0.0, tps=0.0)
    flow, mask = synthetic.flow_on_grid(synthetic.random_warp(np.random.default_rng(0), params), 5, 7)
    assert np.abs(flow).max() < 1e-9 and mask.all()


def _blobs(rng, size=96):
    image = cv2.GaussianBlur(rng.integers(0, 256, (size // 8, size // 8, 3)).astype(np.uint8), (0, 0), 0.8)
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC)


@pytest.fixture
def tiny_data(tmp_path):
    """12 'imagenet' images (one corrupt), 2 cat and 2 dog 'breeds' of 3 pets each, a config."""
    rng = np.random.default_rng(0)
    imagenet = tmp_path / "imagenet"
    imagenet.mkdir()
    for i in range(12):
        cv2.imwrite(str(imagenet / f"n{i:08d}_class{i}.JPEG"), _blobs(rng))
    (imagenet / "n00000005_class5.JPEG").write_bytes(b"not a jpeg")
    pets = tmp_path / "pets"
    rows = ["image_name,breed,species,xmin,ymin,xmax,ymax,width,height,area,image_width,image_height"]
    for species, breeds in (("cat", ("Abyssinian", "Bengal")), ("dog", ("beagle", "boxer"))):
        (pets / f"{species}s").mkdir(parents=True)
        for breed in breeds:
            for n in range(3):
                cv2.imwrite(str(pets / f"{species}s" / f"{breed}_{n}.jpg"), _blobs(rng))
                rows.append(f"{breed}_{n},{breed},{species},10,20,60,70,50,50,2500,96,96")
    (pets / "bboxes.csv").write_text("\n".join(rows) + "\n")
    config = tmp_path / "tiny.toml"
    config.write_text(f"""
[model]
input_size = 64
seed = 1
[data]
imagenet = "{imagenet}"
pets = "{pets}"
[synthetic]
steps = 2
batch = 2
lr = 1e-3
checkpoint_every = 1
validation_batches = 1
[weak]
steps = 2
batch = 2
lr = 1e-3
checkpoint_every = 2
validation_batches = 1
""")
    return load_config(str(config)), tmp_path / "out"


def test_corrupt_images_are_skipped_and_counted(tiny_data):
    config, _ = tiny_data
    store = ImageStore(64)
    paths = sorted(os.path.join(config["data"]["imagenet"], n) for n in os.listdir(config["data"]["imagenet"]))
    assert len(store.usable(paths)) == 11 and len(store.failed) == 1
    assert store.get(paths[0]).shape == (64, 64, 3)


@pytest.mark.parametrize("stage", ["synthetic", "weak"])
def test_a_few_steps_on_one_batch_lower_the_loss(tiny_data, stage):
    config, out = tiny_data
    trainer = Trainer(config, str(out), torch.device("cpu"))
    optimiser = trainer.make_optimiser(stage)
    loss_fn = trainer.synthetic_loss if stage == "synthetic" else trainer.weak_loss
    losses = []
    for _ in range(6):
        loss = loss_fn(np.random.default_rng(7), 2)  # the same batch every step
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_stages_checkpoint_and_resume(tiny_data, capsys):
    config, out = tiny_data
    trainer = Trainer(config, str(out), torch.device("cpu"))
    trainer.run_stage("synthetic")
    trainer.run_stage("weak", init=str(out / "synthetic.safetensors"))
    names = set(os.listdir(out))
    assert {"synthetic_step000001.safetensors", "synthetic_step000002.safetensors", "synthetic.safetensors",
            "weak_step000002.safetensors", "weak.safetensors", "synthetic_state.pt", "weak_state.pt",
            "log.jsonl"} <= names
    final = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    again = Trainer(config, str(out), torch.device("cpu"))
    again.run_stage("weak", resume=True)  # already at the last step: nothing to do
    assert "resumed at step 2" in capsys.readouterr().out
    assert all(torch.equal(final[k], v) for k, v in again.model.state_dict().items())


def test_a_batch_drawn_side_by_side_equals_its_samples_drawn_in_turn(tiny_data):
    config, out = tiny_data
    trainer = Trainer(config, str(out), torch.device("cpu"))
    seeds = [[1, 0, 5, i] for i in range(6)]
    source, target, warps = trainer.synthetic_batch([np.random.default_rng(s) for s in seeds], 6,
                                                    trainer.synthetic_train)
    for i, seed in enumerate(seeds):
        one_source, one_target, one_warp = trainer._synthetic_sample(np.random.default_rng(seed), trainer.synthetic_train)
        assert torch.equal(source[i], trainer._tensor([one_source])[0])
        assert torch.equal(target[i], trainer._tensor([one_target])[0])
        assert np.array_equal(warps[i].matrix, one_warp.matrix)
    assert not torch.equal(source[0], source[1])  # the seeds differ, so do the samples


def test_an_interrupted_stage_keeps_its_last_step_and_resumes_from_it(tiny_data, capsys):
    config, out = tiny_data
    config["synthetic"].update(steps=4, checkpoint_every=10)  # no regular checkpoint before the end
    trainer = Trainer(config, str(out), torch.device("cpu"))
    calls = {"n": 0}
    loss = trainer.synthetic_loss

    def stopped_at_the_third_step(rng, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # what bench/gpu_run.sh's time limit sends
        return loss(rng, batch)

    trainer.synthetic_loss = stopped_at_the_third_step
    with pytest.raises(KeyboardInterrupt):
        trainer.run_stage("synthetic")
    assert "synthetic_step000002.safetensors" in os.listdir(out)
    interrupted = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    again = Trainer(config, str(out), torch.device("cpu"))
    again.run_stage("synthetic", resume=True)
    assert "stopped at step 2" in capsys.readouterr().out and os.path.isfile(out / "synthetic.safetensors")
    resumed = torch.load(out / "synthetic_state.pt", weights_only=False)
    assert resumed["step"] == 4
    assert any(not torch.equal(interrupted[k], v) for k, v in again.model.state_dict().items())


def test_weak_pairs_stay_within_a_group(tiny_data):
    config, out = tiny_data
    trainer = Trainer(config, str(out), torch.device("cpu"))
    pairs = trainer.weak_pairs(np.random.default_rng(0), 20, trainer.weak_train)
    assert all(a.group == b.group and a.path != b.path for a, b, _ in pairs)
    assert {os.path.basename(p.path) for p in trainer.weak_val} == {f"Abyssinian_{n}.jpg" for n in range(3)}


def test_pets_boxes_and_mask(tiny_data):
    config, _ = tiny_data
    photos = pets_photos(config["data"]["pets"])
    assert len(photos) == 12 and photos[0].box == (10.0, 20.0, 60.0, 70.0) and photos[0].size == (96, 96)
    mask = box_mask(photos[0], 4, 4)  # cell centres at 11.5, 35.5, 59.5, 83.5 px
    assert mask.tolist() == [[0, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    assert box_mask(Photo("x", "bird"), 2, 3).sum() == 6


def test_frozen_features_leave_all_but_the_geometric_network_unchanged(tiny_data):
    config, out = tiny_data
    config["synthetic"]["freeze_features"] = True
    trainer = Trainer(config, str(out), torch.device("cpu"))
    optimiser = trainer.make_optimiser("synthetic")
    before = {k: v.clone() for k, v in trainer.model.named_parameters()}
    loss = trainer.synthetic_loss(np.random.default_rng(3), 2)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    changed = {k for k, v in trainer.model.named_parameters() if not torch.equal(before[k], v)}
    assert changed and all(k.startswith("geometry.") for k in changed)


def test_learning_rate_warms_up_then_decays_to_a_tenth():
    assert learning_rate_scale(0, 100) == 1.0
    assert learning_rate_scale(0, 100, warmup=20) == pytest.approx(0.05, abs=1e-3)
    assert learning_rate_scale(9, 100, warmup=20) == pytest.approx(0.5 * (0.55 + 0.45 * math.cos(0.09 * math.pi)))
    assert learning_rate_scale(50, 100, warmup=20) == pytest.approx(0.55)
    assert learning_rate_scale(100, 100, warmup=20) == pytest.approx(0.1)


def test_a_stage_without_its_table_is_refused(tiny_data):
    config, out = tiny_data
    del config["weak"]
    trainer = Trainer(config, str(out), torch.device("cpu"))
    with pytest.raises(ValueError, match=r"no \[weak\] table"):
        trainer.run_stage("weak")


def test_config_errors_are_value_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\n")
    with pytest.raises(ValueError):
        load_config(str(bad))
    bad.write_text("[model]\n")
    with pytest.raises(ValueError, match="missing"):
        load_config(str(bad))


def test_box_hits_counts_points_landing_in_the_target_box():
    box = Photo("a", "cat", (10.0, 20.0, 60.0, 70.0), (96, 96))
    other = Photo("b", "cat", (50.0, 20.0, 90.0, 70.0), (96, 96))
    field = identity_field(2, 4, 4)
    assert box_hits([(box, box, False), (box, box, True)], field) == 1.0
    # identity: source-box columns at x = 22.5, 35, 47.5 px; the other box starts at 50 px
    assert box_hits([(box, other, False)], field[:1]) == 0.0
    field[:, 4] = 30 * 2 / 96  # shift 30 px right: columns at 52.5, 65, 77.5 px
    assert box_hits([(box, other, False)], field[:1]) == 1.0


def test_gpu_pack_resizes_photos_and_scales_the_pets_boxes(tmp_path):
    from tools.make_gpu_pack import pack_pets, resize_photo
    pets = tmp_path / "pets"
    (pets / "cats").mkdir(parents=True)
    cv2.imwrite(str(pets / "cats" / "Abyssinian_1.jpg"), np.zeros((50, 100, 3), np.uint8))
    (pets / "bboxes.csv").write_text("image_name,breed,species,xmin,ymin,xmax,ymax,width,height,area,"
                                     "image_width,image_height\nAbyssinian_1,Abyssinian,cat,10,5,60,45,50,40,2000,100,50\n"
                                     "Missing_2,Abyssinian,cat,1,1,2,2,1,1,1,100,50\n")
    assert pack_pets(str(pets), str(tmp_path / "pack"), 64) == 1  # the missing photo is left out
    photos = pets_photos(str(tmp_path / "pack"))
    assert [(p.box, p.size) for p in photos] == [((6.4, 6.4, 38.4, 57.6), (64, 64))]
    assert cv2.imread(photos[0].path).shape == (64, 64, 3)
    assert resize_photo(str(pets / "bboxes.csv"), str(tmp_path / "x.jpg"), 64) is None  # not an image
