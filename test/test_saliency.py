"""Per-example mask gradients agree with autograd on explicit mask parameters."""

import torch
import torch.nn.functional as F

from conftest import TINY
from sentryfuse_ros.model import SentryAttend
from sentryfuse_ros.pruning.saliency import mask_gradients



def _batch(batch=4, subset=("camera", "imu", "audio"), seed=0):
    generator = torch.Generator().manual_seed(seed)
    shapes = {"camera": (1, 28, 28), "imu": (6, 200), "audio": (40, 101)}
    inputs = {name: torch.randn(batch, *shapes[name], generator=generator) for name in subset}
    return inputs, torch.randint(0, 10, (batch,), generator=generator)


def test_mask_gradients_equal_autograd_of_the_masks():
    torch.manual_seed(0)
    model = SentryAttend(TINY).eval()
    inputs, labels = _batch()
    measured = mask_gradients(model, [(inputs, labels)])
    for example in range(len(labels)):
        # Reference: make the masks leaf tensors and differentiate one example's loss.
        masks = []
        for block in model.blocks:
            block.attn.head_mask = torch.ones(4, requires_grad=True)
            block.ffn.ffn_mask = torch.ones(TINY.ffn_dim, requires_grad=True)
            masks.append((block.attn.head_mask, block.ffn.ffn_mask))
        one = {name: tensor[example : example + 1] for name, tensor in inputs.items()}
        F.cross_entropy(model(one), labels[example : example + 1]).backward()
        for layer, (head_mask, ffn_mask) in enumerate(masks):
            torch.testing.assert_close(measured.heads[layer][example], head_mask.grad, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(measured.channels[layer][example], ffn_mask.grad, rtol=1e-4, atol=1e-6)


def test_pruned_structures_measure_zero_and_subsets_differ():
    torch.manual_seed(0)
    model = SentryAttend(TINY).eval()
    model.blocks[0].attn.head_mask[1] = 0.0
    model.blocks[1].ffn.ffn_mask[:4] = 0.0
    taylor_heads, taylor_channels = mask_gradients(model, [_batch()]).taylor()
    assert taylor_heads[0][1] == 0 and taylor_heads[0][0] > 0
    assert torch.all(taylor_channels[1][:4] == 0) and torch.all(taylor_channels[1][4:] > 0)
    camera_only, _ = mask_gradients(model, [_batch(subset=("camera",))]).taylor()
    assert not torch.allclose(camera_only[1], taylor_heads[1])
    # Measuring leaves no gradients behind on the weights.
    assert all(parameter.grad is None for parameter in model.parameters())
