"""The 81-offset window correlation (batched matmul per window row) against a direct
per-offset computation with autograd's own gradients, on random inputs."""
import pytest
import torch
import torch.nn.functional as F

from rtn_core.model import local_correlation


def direct_correlation(source, target, radius):
    """Channel (dy + r)(2r + 1) + (dx + r) = sum over C of source[p] * target[p + d], 0 outside."""
    height, width = source.shape[-2:]
    padded = F.pad(target, [radius] * 4)
    side = 2 * radius + 1
    return torch.stack([(source * padded[:, :, dy:dy + height, dx:dx + width]).sum(1)
                        for dy in range(side) for dx in range(side)], dim=1)


@pytest.mark.parametrize("shape, radius", [((2, 128, 32, 32), 4), ((1, 128, 16, 16), 4), ((3, 7, 5, 11), 2),
                                           ((1, 4, 3, 2), 4)])
def test_correlation_and_its_gradients_equal_the_direct_computation(shape, radius):
    generator = torch.Generator().manual_seed(sum(shape))
    source = F.normalize(torch.randn(shape, generator=generator), dim=1).requires_grad_()
    target = F.normalize(torch.randn(shape, generator=generator), dim=1).requires_grad_()
    grad = torch.randn(shape[0], (2 * radius + 1) ** 2, *shape[2:], generator=generator)
    fast = local_correlation(source, target, radius)
    direct = direct_correlation(source, target, radius)
    torch.testing.assert_close(fast, direct, atol=1e-5, rtol=0)
    fast_grads = torch.autograd.grad(fast, (source, target), grad)
    direct_grads = torch.autograd.grad(direct, (source, target), grad)
    for a, b in zip(fast_grads, direct_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_correlation_under_inference_mode_matches():
    source, target = torch.randn(2, 2, 16, 8, 8).unbind(0)
    with torch.inference_mode():
        torch.testing.assert_close(local_correlation(source, target), direct_correlation(source, target, 4),
                                   atol=1e-5, rtol=0)
