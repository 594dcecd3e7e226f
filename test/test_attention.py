"""Sparse grouped-query attention: same result as a dense masked reference, less arithmetic, prunable heads."""

import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from sentryfuse_ros.model.attention import (
    GroupedQueryAttention,
    TokenLayout,
    block_sparse_attention,
    dense_attention,
    sparse_pattern_mask,
)
from sentryfuse_ros.model.config import LayerShape

D_MODEL, HEAD_DIM = 24, 6
# Two global tokens, then modality blocks of 5, 3 and 7 tokens.
LAYOUT = TokenLayout.from_counts(2, [5, 3, 7])
UNIFORM = LayerShape(n_heads=4, n_kv_groups=2, head_group=(0, 0, 1, 1), ffn_dim=8)
# What a pruned layer may look like: 5 heads spread unevenly over 2 groups.
UNEVEN = LayerShape(n_heads=5, n_kv_groups=2, head_group=(1, 0, 1, 1, 0), ffn_dim=8)


def reference_attention(module: GroupedQueryAttention, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Textbook attention over all T x T pairs, disallowed pairs set to -inf before the softmax."""
    batch, n_tokens, _ = x.shape
    out = []
    k_all = module.k(x).view(batch, n_tokens, module.n_kv_groups, HEAD_DIM)
    v_all = module.v(x).view(batch, n_tokens, module.n_kv_groups, HEAD_DIM)
    q_all = module.q(x).view(batch, n_tokens, module.n_heads, HEAD_DIM)
    for head in range(module.n_heads):
        group = int(module.head_group[head])
        scores = q_all[:, :, head] @ k_all[:, :, group].transpose(1, 2) / math.sqrt(HEAD_DIM)
        scores = scores.masked_fill(~allowed, float("-inf"))
        out.append(scores.softmax(-1) @ v_all[:, :, group] * module.head_mask[head])
    return module.o(torch.cat(out, dim=-1))


@pytest.mark.parametrize("shape", [UNIFORM, UNEVEN], ids=["uniform", "uneven"])
def test_sparse_attention_equals_dense_reference_with_same_pattern(shape):
    torch.manual_seed(0)
    module = GroupedQueryAttention(D_MODEL, HEAD_DIM, shape, sparse=True)
    x = torch.randn(3, LAYOUT.n_tokens, D_MODEL)
    expected = reference_attention(module, x, sparse_pattern_mask(LAYOUT))
    torch.testing.assert_close(module(x, LAYOUT), expected, rtol=1e-5, atol=1e-5)


def test_dense_attention_equals_unmasked_reference():
    torch.manual_seed(1)
    module = GroupedQueryAttention(D_MODEL, HEAD_DIM, UNEVEN, sparse=False)
    x = torch.randn(2, LAYOUT.n_tokens, D_MODEL)
    everything = torch.ones(LAYOUT.n_tokens, LAYOUT.n_tokens, dtype=torch.bool)
    torch.testing.assert_close(module(x, LAYOUT), reference_attention(module, x, everything), rtol=1e-5, atol=1e-5)


def test_sparse_pattern_mask_lets_patches_see_own_block_and_globals_only():
    allowed = sparse_pattern_mask(LAYOUT)
    assert allowed[:2].all()  # global tokens see everything
    camera_rows = allowed[2:7]
    assert camera_rows[:, :7].all() and not camera_rows[:, 7:].any()
    imu_rows = allowed[7:10]
    assert imu_rows[:, :2].all() and imu_rows[:, 7:10].all()
    assert not imu_rows[:, 2:7].any() and not imu_rows[:, 10:].any()


def _matmul_flops(function, *args) -> int:
    with FlopCounterMode(display=False) as counter:
        function(*args)
    return counter.get_total_flops()


def test_sparse_attention_does_fewer_multiply_adds_exactly_as_the_pattern_predicts():
    batch, heads = 2, 4
    q, k, v = (torch.randn(batch, heads, LAYOUT.n_tokens, HEAD_DIM) for _ in range(3))
    allowed_pairs = int(sparse_pattern_mask(LAYOUT).sum())
    # Scores and weighted values: 2 products, 2 FLOPs per multiply-add, per allowed (query, key) pair.
    expected_sparse = 2 * 2 * batch * heads * HEAD_DIM * allowed_pairs
    expected_dense = 2 * 2 * batch * heads * HEAD_DIM * LAYOUT.n_tokens**2
    assert _matmul_flops(block_sparse_attention, q, k, v, LAYOUT) == expected_sparse
    assert _matmul_flops(dense_attention, q, k, v, LAYOUT) == expected_dense
    assert expected_sparse < 0.6 * expected_dense


def test_grouped_kv_projections_are_smaller_than_query_projection():
    module = GroupedQueryAttention(D_MODEL, HEAD_DIM, UNIFORM, sparse=True)
    assert module.q.weight.shape == (4 * HEAD_DIM, D_MODEL)
    assert module.k.weight.shape == module.v.weight.shape == (2 * HEAD_DIM, D_MODEL)
    assert module.o.weight.shape == (D_MODEL, 4 * HEAD_DIM)


def test_masked_head_contributes_nothing_and_hook_sees_per_head_outputs():
    torch.manual_seed(2)
    module = GroupedQueryAttention(D_MODEL, HEAD_DIM, UNIFORM, sparse=True)
    x = torch.randn(2, LAYOUT.n_tokens, D_MODEL)
    seen = []
    module.head_output.register_forward_hook(lambda _module, _inputs, output: seen.append(output))
    module.head_mask[1] = 0.0
    out = module(x, LAYOUT)
    assert seen[0].shape == (2, 4, LAYOUT.n_tokens, HEAD_DIM)
    assert seen[0][:, 1].abs().max() == 0 and seen[0][:, 0].abs().max() > 0
    # Same result as removing head 1's columns from the output projection.
    with torch.no_grad():
        module.head_mask[1] = 1.0
        module.o.weight[:, HEAD_DIM : 2 * HEAD_DIM] = 0.0
    torch.testing.assert_close(module(x, LAYOUT), out)


def test_group_with_all_heads_masked_is_dead():
    torch.manual_seed(3)
    module = GroupedQueryAttention(D_MODEL, HEAD_DIM, UNIFORM, sparse=True)
    module.head_mask[2:] = 0.0  # heads 2 and 3: all of group 1
    x = torch.randn(2, LAYOUT.n_tokens, D_MODEL)
    before = module(x, LAYOUT)
    with torch.no_grad():
        module.k.weight[HEAD_DIM:].normal_()
        module.v.weight[HEAD_DIM:].normal_()
    torch.testing.assert_close(module(x, LAYOUT), before)
