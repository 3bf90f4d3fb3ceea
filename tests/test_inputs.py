"""Images of every kind, weights files, the matcher's stream and the `match` command line."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from rtn_core.backbones import WeightsError, build_backbone
from rtn_core.images import ImageError, load_image, looks_like_image
from rtn_core.matcher import Matcher, to_input_tensor
from rtn_core.weights import load_rtn_weights, save_rtn_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAT_A = os.path.join(ROOT, "resources", "samples", "cat-chelsea.png")
CAT_B = os.path.join(ROOT, "resources", "samples", "cat-pexels-20787.jpg")


def write(path, array):
    assert cv2.imwrite(str(path), array)
    return str(path)


def test_grayscale_rgba_and_16_bit_become_rgb8(tmp_path):
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (7, 1))
    loaded = load_image(write(tmp_path / "gray.png", gray))
    assert loaded.pixels.shape == (7, 25, 3) and loaded.pixels.dtype == np.uint8
    np.testing.assert_array_equal(loaded.pixels[:, :, 1], gray)

    bgra = np.zeros((5, 6, 4), np.uint8)
    bgra[..., 0] = 255  # blue
    bgra[..., 3] = 255
    bgra[0, 0, 3] = 0  # one transparent pixel: composited on white
    rgba = load_image(write(tmp_path / "rgba.png", bgra)).pixels
    assert tuple(rgba[1, 1]) == (0, 0, 255) and tuple(rgba[0, 0]) == (255, 255, 255)

    deep = np.full((4, 4), 100 * 257, np.uint16)  # 16-bit 100/255 of full scale
    assert load_image(write(tmp_path / "deep.png", deep)).pixels[0, 0, 0] == 100


def test_one_pixel_image_matches(tmp_path):
    tiny = write(tmp_path / "tiny.png", np.full((1, 1, 3), 90, np.uint8))
    result = Matcher(weights="").match(load_image(tiny), load_image(CAT_B))
    assert result.map_points([[0, 0]]).shape == (1, 2)


def test_match_takes_paths_and_names_what_is_not_an_image(tmp_path):
    matcher = Matcher(weights="", input_size=64)
    by_path = matcher.match(CAT_A, CAT_B)
    loaded = matcher.match(load_image(CAT_A), load_image(CAT_B))
    assert (by_path.source_size, by_path.target_size) == ((451, 300), (640, 426))
    points = [[100.0, 80.0], [300.0, 200.0]]
    np.testing.assert_allclose(by_path.map_points(points), loaded.map_points(points), atol=1e-4)
    with pytest.raises(ImageError, match="missing.png: no such file"):
        matcher.match(str(tmp_path / "missing.png"), CAT_B)
    for bad, what in ((None, r"NoneType of shape \(\)"), (np.zeros(5), r"ndarray of shape \(5,\)")):
        with pytest.raises(ImageError, match=f"expected an image .* got {what}"):
            matcher.match(bad, CAT_B)


def test_very_large_image_is_downscaled_not_rejected(tmp_path):
    big = np.zeros((5000, 7000, 3), np.uint8)
    cv2.circle(big, (6000, 1000), 300, (255, 255, 255), -1)
    loaded = load_image(write(tmp_path / "big.png", big), max_side=1000)
    assert loaded.original_size == (7000, 5000)
    assert max(loaded.pixels.shape[:2]) == 1000 and loaded.scale == pytest.approx(7.0)
    # the circle is where it was, in original pixels
    ys, xs = np.nonzero(loaded.pixels[:, :, 0] > 128)
    assert xs.mean() * loaded.scale == pytest.approx(6000, abs=10)


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"not an image at all", "not an image"),
                                               (b"\x89PNG\r\n\x1a\n\x00\x00broken", "not an image")])
def test_non_images_get_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        load_image(path)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.jpg")


def test_looks_like_image_reads_the_signature_only(tmp_path):
    cv2.imwrite(str(tmp_path / "ok.png"), np.zeros((4, 5, 3), np.uint8))
    (tmp_path / "text.jpg").write_text("not an image at all")
    (tmp_path / "cut.png").write_bytes((tmp_path / "ok.png").read_bytes()[:20])  # starts like a PNG
    assert looks_like_image(tmp_path / "ok.png") and looks_like_image(tmp_path / "cut.png")
    assert not looks_like_image(tmp_path / "text.jpg")
    assert not looks_like_image(tmp_path) and not looks_like_image(tmp_path / "missing.png")


def test_paper_backbones_need_a_fitting_weights_file(tmp_path):
    with pytest.raises(WeightsError, match="needs a torchvision-format weights file"):
        build_backbone("vgg19")
    with pytest.raises(WeightsError, match="not found"):
        build_backbone("resnet101", str(tmp_path / "nope.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="cannot read"):
        build_backbone("vgg19", str(junk))
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, wrong)
    with pytest.raises(WeightsError, match="do not fit vgg19"):
        build_backbone("vgg19", str(wrong))


def test_vgg19_builds_from_torchvision_format_weights(tmp_path):
    """A state dict with torchvision's vgg19 key names loads; conv5_1 is the stride-16 level conv."""
    from rtn_core.backbones import VGG19
    state = {}
    channels = 3
    index = 0
    for item in [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512]:
        if item == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(item, channels, 3, 3) * 0.01
        state[f"features.{index}.bias"] = torch.zeros(item)
        channels, index = item, index + 2
    state["classifier.0.weight"] = torch.zeros(1)  # extra keys of the full network are ignored
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    backbone = VGG19(str(path))
    torch.testing.assert_close(backbone.own_level_convs[16].weight, state["features.28.weight"])
    levels = backbone(torch.rand(1, 3, 64, 64))
    assert levels[16].shape == (1, 512, 4, 4) and levels[8].shape == (1, 256, 8, 8)


def test_rtn_weights_round_trip_and_mismatch(tmp_path):
    matcher = Matcher(weights="")
    with torch.no_grad():
        matcher.model.geometry.out.bias.fill_(0.01)
    path = str(tmp_path / "rtn.safetensors")
    save_rtn_weights(matcher.model, path)
    other = Matcher(weights=path)
    torch.testing.assert_close(other.model.geometry.out.bias, matcher.model.geometry.out.bias)
    from safetensors.torch import save_file
    save_file({"geometry.out.bias": torch.zeros(6)}, str(tmp_path / "partial.safetensors"))
    with pytest.raises(WeightsError, match="does not fit this RTN"):
        Matcher(weights=str(tmp_path / "partial.safetensors"))


def test_stream_yields_every_iteration_as_it_comes():
    a, b = load_image(CAT_A), load_image(CAT_B)
    snapshots = list(Matcher(weights="").stream(a, b))
    assert [s.last for s in snapshots] == list(range(len(snapshots)))
    assert len(snapshots) == snapshots[-1].total_iterations + 1 and snapshots[-1].complete
    assert not snapshots[0].complete
    confidence = snapshots[-1].confidence([[100, 100], [0, 0]])
    assert ((confidence > 0) & (confidence <= 1)).all()


def test_prepared_images_match_as_the_model_does_on_the_pair():
    """Backbone maps computed once per image (label transfer) give the pair's own fields."""
    matcher, a, b = Matcher(device="cpu"), load_image(CAT_A), load_image(CAT_B)
    prepared = matcher.match(matcher.prepare(a), matcher.prepare(b))
    with torch.inference_mode():
        steps = list(matcher.model.iterate(*(to_input_tensor(im.pixels, matcher.input_size) for im in (a, b))))
    assert len(prepared.iterations) == len(steps)
    for iteration, step in zip(prepared.iterations, steps):
        assert torch.allclose(iteration.field, step.field[0], atol=1e-5)
    assert prepared.source_size == a.original_size and prepared.target_size == b.original_size


def run_match(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "main.py"), "match", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_match_command_prints_json():
    done = run_match(CAT_A, CAT_B, "--points", "10,20; 450,299", "--weights", "")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["device"] == "cpu" and report["iterations"] == 5
    first = report["matches"][0]
    assert first["source"] == [10.0, 20.0] and len(first["per_iteration"]) == 6
    assert 0 <= first["target"][0] < 640 and 0 <= first["target"][1] < 426 and 0 < first["confidence"] <= 1


@pytest.mark.parametrize("args, message", [
    ((CAT_A, CAT_B, "--points", "451,10"), "outside the source image"),
    ((CAT_A, CAT_B, "--points", "1;2"), "bad point"),
    ((__file__, CAT_B, "--points", "1,2"), "not an image"),
    ((CAT_A, "/nonexistent.png", "--points", "1,2"), "no such file"),
    ((CAT_A, CAT_B, "--points", "1,2", "--weights", __file__), "cannot read weights"),
])
def test_match_command_rejects_bad_input_in_one_line(args, message):
    done = run_match(*args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def jpeg_with_orientation(path, bgr, orientation):
    """A real JPEG (OpenCV's encoding) with an EXIF APP1 segment carrying ``orientation``, as phones write."""
    import struct
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 100])
    tiff = b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\x00" * 4
    app1 = b"Exif\x00\x00" + tiff
    data = encoded.tobytes()
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:])
    return str(path)


def test_exif_orientation_6_loads_as_viewers_show_it(tmp_path):
    """A phone photo stored 40x20 with orientation 6 is shown 20x40, turned clockwise: labels made in
    labelme or any viewer sit on the pixels load_image gives."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:5, :5] = (0, 0, 255)  # red block at the stored top-left corner
    loaded = load_image(jpeg_with_orientation(tmp_path / "phone.jpg", stored, 6))
    assert loaded.original_size == (20, 40) and loaded.pixels.shape == (40, 20, 3)
    assert loaded.pixels[1, 18, 0] > 200 and loaded.pixels[1, 1, 0] < 50  # now at the top-right
    for orientation in range(1, 9):  # every orientation as OpenCV's own EXIF-aware decoding turns it
        path = jpeg_with_orientation(tmp_path / f"o{orientation}.jpg", stored, orientation)
        expected = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(load_image(path).pixels, expected)


def png_header_only(path, width, height):
    """A PNG whose header claims width x height, with no pixel data (as small as a zeros PNG gets)."""
    import struct
    import zlib
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return str(path)


def test_images_too_many_pixels_are_refused_from_the_header(tmp_path, monkeypatch):
    decoded = []
    monkeypatch.setattr(cv2, "imdecode", lambda *args: decoded.append(args) or None)
    with pytest.raises(ImageError, match=r"huge.png: 30000x20000 is 600 megapixels, more than the 250"):
        load_image(png_header_only(tmp_path / "huge.png", 30000, 20000))
    assert decoded == []  # refused before any decoding


def test_header_sizes_agree_with_decoding(tmp_path):
    from rtn_core.image_header import read_header
    image = np.random.default_rng(0).integers(0, 255, (13, 29, 3), dtype=np.uint8)
    for extension in (".png", ".jpg", ".bmp", ".webp", ".tiff"):
        path = write(tmp_path / f"x{extension}", image)
        assert read_header(path).size == (29, 13), extension


def test_weights_must_be_finite_floats_and_pickles_get_a_plain_message(tmp_path):
    from safetensors.torch import save_file
    matcher = Matcher(weights="")
    state = {k: v.detach().clone().contiguous() for k, v in matcher.model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    state["geometry.out.bias"][0] = float("nan")
    save_file(state, str(tmp_path / "nan.safetensors"))
    with pytest.raises(WeightsError, match=r"nan.safetensors: geometry.out.bias holds NaN or infinite values"):
        Matcher(weights=str(tmp_path / "nan.safetensors"))
    state["geometry.out.bias"] = torch.zeros(6, dtype=torch.int32)
    save_file(state, str(tmp_path / "int.safetensors"))
    with pytest.raises(WeightsError, match=r"int.safetensors: geometry.out.bias is torch.int32, not floating point"):
        Matcher(weights=str(tmp_path / "int.safetensors"))
    pickled = tmp_path / "model.pt"
    torch.save({"model": matcher.model}, pickled)  # a whole pickled module: code, not weights
    with pytest.raises(WeightsError) as error:
        Matcher(weights=str(pickled))
    assert "model.pt is not a weights file this app loads" in str(error.value)
    assert "weights_only" not in str(error.value) and "\n" not in str(error.value)
