"""Block hard thresholding: whole blocks of B row entries kept by L2 norm."""

import pytest
import torch

from kiloml.compress.hard_threshold import block_norms, hard_threshold_, top_block_mask


def test_blocks_of_two_kept_by_l2_norm_not_by_largest_entry():
    # row blocks (L2): [3, 0] 3.0 | [2, 2] 2.83 | [0, 0] 0 ; [1, 1] 1.41 | [0, 2.9] 2.9 | [1, 0] 1
    w = torch.tensor([[3.0, 0.0, 2.0, 2.0, 0.0, 0.0],
                      [1.0, 1.0, 0.0, 2.9, 1.0, 0.0]])
    assert torch.allclose(block_norms(w, 2), torch.tensor([[3.0, 8 ** 0.5, 0.0],
                                                           [2 ** 0.5, 2.9, 1.0]]))
    mask = top_block_mask(w, 0.5, 2)  # 3 of 6 blocks: 3.0, 2.9, 2.83
    assert mask.tolist() == [[True, True, True, True, False, False],
                             [False, False, True, True, False, False]]
    # L1 would rank [2, 2] (4.0) first and keep [1, 1] (2.0) before [0, 2.9]: not what is kept
    assert not mask[1, :2].any()


def test_ragged_last_block_is_the_rest_of_the_row():
    w = torch.tensor([[0.1, 0.1, 0.1, 0.1, 5.0],
                      [1.0, 1.0, 1.0, 1.0, 0.2]])
    assert torch.allclose(block_norms(w, 4), torch.tensor([[0.2, 5.0], [2.0, 0.2]]))
    mask = top_block_mask(w, 0.5, 4)  # 2 of 4 blocks: the lone 5.0 and row 1's first four
    assert mask.tolist() == [[False] * 4 + [True], [True] * 4 + [False]]
    # a block wider than the row is the whole row
    assert top_block_mask(w, 0.5, 8).tolist() == [[True] * 5, [False] * 5]


def test_ties_break_by_position_and_at_least_one_block_survives():
    w = torch.ones(2, 8)
    assert top_block_mask(w, 0.5, 4).tolist() == [[True] * 8, [False] * 8]
    assert int(top_block_mask(w, 0.01, 4).sum()) == 4
    assert top_block_mask(w, 1.0, 4).all()


def test_block_one_is_unstructured_and_a_block_below_one_is_refused():
    torch.manual_seed(0)
    w = torch.randn(5, 7)
    assert torch.equal(top_block_mask(w, 0.3, 1), w.abs() >= w.abs().flatten().sort()[0][-10])
    with pytest.raises(ValueError, match="at least 1"):
        top_block_mask(w, 0.5, 0)


def test_hard_threshold_zeroes_whole_blocks_in_place():
    torch.manual_seed(1)
    w = torch.randn(8, 12)
    mask = hard_threshold_(w, 0.25, 4)
    blocks = (w != 0).reshape(8, 3, 4)
    assert int(blocks.any(-1).sum()) == 6  # round(0.25 * 24) blocks
    assert torch.equal(blocks.any(-1), blocks.all(-1))  # every block all or nothing
    assert torch.equal(mask, w != 0)
