"""Throughput settings keep results: the Matcher's channels_last model gives the fields and
confidences of the plain layout, and the allocator setting makes freed memory reusable without
page faults."""
import copy
import os
import resource
import sys

import pytest
import torch

from rtn_core.host_memory import keep_freed_memory
from rtn_core.images import load_image
from rtn_core.matcher import Matcher, to_input_tensor, window_softmax

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources", "samples")


def test_channels_last_matcher_equals_the_plain_layout():
    matcher = Matcher()
    source = load_image(os.path.join(SAMPLES, "cat-chelsea.png"))
    target = load_image(os.path.join(SAMPLES, "cat-pexels-20787.jpg"))
    result = matcher.match(source, target)
    plain = copy.deepcopy(matcher.model).to(memory_format=torch.contiguous_format)
    assert all(p.is_contiguous() for p in plain.parameters())
    with torch.inference_mode():
        steps = plain(to_input_tensor(source.pixels, matcher.input_size),
                      to_input_tensor(target.pixels, matcher.input_size))
    assert len(steps) == len(result.iterations)
    for step, iteration in zip(steps, result.iterations):
        # normalised units: 1e-4 is under 0.02 px at 320; float reordering gave up to 1.3e-5
        torch.testing.assert_close(iteration.field, step.field[0], atol=1e-4, rtol=0)
        # the window softmax at temperature 0.05 scales score differences up 20 times
        torch.testing.assert_close(iteration.confidence, window_softmax(step.correlation).amax(1)[0],
                                   atol=2e-4, rtol=0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_freed_blocks_are_reused_without_page_faults():
    assert keep_freed_memory()
    torch.ones(1 << 18)  # 1 MiB, as many activations: glibc maps such blocks afresh by default
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        torch.ones(1 << 18)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 500  # mapped afresh each time, its 256 pages fault in: 5,000
