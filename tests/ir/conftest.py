"""Synthetic FastGRNN/FastRNN classifiers for the quantization tests."""

import numpy as np
import pytest
import torch

from kiloml.nn.classifier import ModelConfig, SequenceClassifier, build_model

FEATURE_SCALE = np.array([1.0, 2.0, 3.0, 50.0, 60.0, 70.0])
FEATURE_OFFSET = np.array([0.0, 1.0, 9.0, 0.0, 0.0, 5.0])


def synthetic_inputs(count: int, steps: int, seed: int) -> np.ndarray:
    """Raw features ``[count, steps, 6]`` with very different per-feature scales."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(count, steps, 6)) * FEATURE_SCALE + FEATURE_OFFSET).astype(np.float32)


def synthetic_model(X: np.ndarray, seed: int = 0, sparsity: float = 0.5,
                    **config) -> SequenceClassifier:
    """A classifier with random weights, normalisation fitted on ``X`` and about ``sparsity``
    of every matrix pruned to exact zeros."""
    torch.manual_seed(seed)
    settings = dict(kind="fastgrnn", input_size=6, num_classes=7, hidden_size=32)
    settings.update(config)
    model = build_model(ModelConfig(**settings)).eval()
    flat = torch.from_numpy(X.reshape(-1, X.shape[-1]))
    model.set_normalization(flat.mean(0), flat.std(0))
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2 and min(param.shape) > 1:
                param.mul_((torch.rand_like(param) >= sparsity).float())
            if param.shape == (1, 32):
                param.normal_(0.0, 0.5)
    return model


@pytest.fixture
def make_model():
    return synthetic_model


@pytest.fixture
def make_inputs():
    return synthetic_inputs
