"""Models saved in EdgeML FastTrainer's layout import with the same outputs as the equations."""

import numpy as np
import pytest
import torch

from kiloml.errors import KilomlError
from kiloml.nn.edgeml_import import import_edgeml


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _save(directory, **arrays):
    directory.mkdir(exist_ok=True)
    for name, value in arrays.items():
        np.save(directory / f"{name}.npy", np.asarray(value, dtype=np.float32))


def _edgeml_fastgrnn_logits(x, p):
    """EdgeML's FastGRNN + FastTrainer classifier written out in numpy (x: [B, T, F])."""
    x = (x - p["mean"]) / p["std"]
    W = p["W2"] @ p["W1"] if "W1" in p else p["W"]
    U = p["U2"] @ p["U1"] if "U1" in p else p["U"]
    h = np.zeros((x.shape[0], W.shape[0]))
    for t in range(x.shape[1]):
        a = x[:, t] @ W.T + h @ U.T
        z = _sigmoid(a + p["Bg"])
        c = np.tanh(a + p["Bh"])
        h = z * h + (_sigmoid(p["zeta"]) * (1 - z) + _sigmoid(p["nu"])) * c
    return h @ p["FC"] + p["FCbias"]


@pytest.mark.parametrize("low_rank", [False, True])
def test_fastgrnn_import_matches_equations(tmp_path, low_rank):
    rng = np.random.default_rng(0)
    F, H, C = 4, 6, 3
    p = {"Bg": rng.normal(size=(1, H)), "Bh": rng.normal(size=(1, H)), "zeta": [[1.2]],
         "nu": [[-3.0]], "FC": rng.normal(size=(H, C)), "FCbias": rng.normal(size=C),
         "mean": rng.normal(size=F), "std": rng.uniform(0.5, 2, size=F)}
    if low_rank:
        p.update(W1=rng.normal(size=(2, F)), W2=rng.normal(size=(H, 2)),
                 U1=rng.normal(size=(3, H)) * 0.3, U2=rng.normal(size=(H, 3)) * 0.3)
    else:
        p.update(W=rng.normal(size=(H, F)), U=rng.normal(size=(H, H)) * 0.3)
    p = {k: np.asarray(v, dtype=np.float32) for k, v in p.items()}
    _save(tmp_path / "model", **p)
    model = import_edgeml(tmp_path / "model")
    assert model.config.kind == "fastgrnn" and model.config.hidden_size == H
    assert model.config.u_rank == (3 if low_rank else None)
    x = rng.normal(size=(5, 7, F)).astype(np.float32)
    expected = _edgeml_fastgrnn_logits(x.astype(np.float64), {k: v.astype(np.float64)
                                                              for k, v in p.items()})
    got = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_fastrnn_import_transposes_edgeml_layout(tmp_path):
    rng = np.random.default_rng(1)
    F, H, C = 3, 5, 2
    W, U = rng.normal(size=(F, H)), rng.normal(size=(H, H)) * 0.3  # EdgeML FastRNN: x @ W
    B, FC, FCb = rng.normal(size=(1, H)), rng.normal(size=(H, C)), rng.normal(size=C)
    _save(tmp_path / "m", W=W, U=U, B=B, alpha=[[-1.0]], beta=[[2.0]], FC=FC, FCbias=FCb)
    model = import_edgeml(tmp_path / "m")
    x = rng.normal(size=(2, 4, F))
    h = np.zeros((2, H))
    for t in range(4):
        h = _sigmoid(2.0) * h + _sigmoid(-1.0) * np.tanh(x[:, t] @ W + h @ U + B)
    got = model(torch.from_numpy(x.astype(np.float32))).detach().numpy()
    np.testing.assert_allclose(got, h @ FC + FCb, rtol=1e-4, atol=1e-4)


def test_import_errors_name_the_problem(tmp_path):
    with pytest.raises(KilomlError, match="no such directory"):
        import_edgeml(tmp_path / "absent")
    _save(tmp_path / "m", Bg=np.zeros((1, 4)))
    with pytest.raises(KilomlError, match="W1.npy: missing"):
        import_edgeml(tmp_path / "m")
    _save(tmp_path / "m", W=np.zeros((4, 3)), U=np.zeros((5, 5)), Bh=np.zeros((1, 4)),
          zeta=[[1]], nu=[[1]], FC=np.zeros((4, 2)), FCbias=np.zeros(2))
    with pytest.raises(KilomlError, match="U.npy: shape"):
        import_edgeml(tmp_path / "m")
