"""A briefly trained FastGRNN keeps its test accuracy after int16 and int8 quantization."""

import numpy as np
import pytest
import torch

from kiloml.ir import quantize_input, quantize_model, simulate
from kiloml.nn.classifier import ModelConfig, build_model

CLASSES, STEPS, FEATURES = 4, 32, 6


def _dataset(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sinusoids whose frequency and phase depend on the class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, size=count)
    t = np.arange(STEPS)[None, :, None]
    frequency = (0.1 + 0.08 * y)[:, None, None] * np.arange(1, FEATURES + 1)[None, None, :]
    phase = rng.uniform(0, 2 * np.pi, size=(count, 1, FEATURES))
    X = np.sin(frequency * t + phase) * np.array([1, 2, 4, 8, 30, 60]) + rng.normal(
        scale=0.6, size=(count, STEPS, FEATURES)) * np.array([1, 2, 4, 8, 30, 60])
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    X_train, y_train = _dataset(600, seed=0)
    X_test, y_test = _dataset(300, seed=1)
    model = build_model(ModelConfig(kind="fastgrnn", input_size=FEATURES, num_classes=CLASSES,
                                    hidden_size=16, u_rank=6, readout="mean"))
    flat = torch.from_numpy(X_train.reshape(-1, FEATURES))
    model.set_normalization(flat.mean(0), flat.std(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    inputs, labels = torch.from_numpy(X_train), torch.from_numpy(y_train)
    for _ in range(12):
        for batch in torch.randperm(len(inputs)).split(64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs[batch]), labels[batch]).backward()
            optimizer.step()
    return model.eval(), X_train, X_test, y_test


def test_quantized_accuracy_stays_close_to_float(trained):
    model, X_train, X_test, y_test = trained
    with torch.no_grad():
        float_accuracy = float((model(torch.from_numpy(X_test)).argmax(1).numpy() == y_test).mean())
    assert float_accuracy > 0.6  # the model learned something
    for bits, allowed_drop in ((16, 0.01), (8, 0.05)):
        q = quantize_model(model, X_train[:256], bits=bits)
        predicted = simulate(q, quantize_input(q, X_test)).argmax(1)
        assert float((predicted == y_test).mean()) >= float_accuracy - allowed_drop, bits
