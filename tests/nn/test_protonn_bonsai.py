"""ProtoNN's initialisation (class-wise k-means prototypes, one-hot label vectors, the median
heuristic for gamma), Bonsai's path relaxation and annealing, the feature-vector input of
both, and the folded normalisation of their deployed projection."""

import numpy as np
import pytest
import torch

from kiloml.data.splits import DatasetSplits, Split
from kiloml.errors import KilomlError
from kiloml.ir import (
    dequantize_output,
    float_graph_logits,
    lower_model,
    quantize_input,
    quantize_model,
    simulate,
)
from kiloml.nn.bonsai import L2, SIGMA_I_END, Bonsai, BonsaiConfig
from kiloml.nn.protonn import ProtoNN, ProtoNNConfig, prototypes_per_class
from kiloml.train.phases import Sparsity
from kiloml.train.trainer import TrainConfig, Trainer, sparsifiable_parameters


def _blobs(n: int = 300, features: int = 20, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, features)) * 3 + 5
    y = np.arange(n) % classes
    return (centres[y] + rng.normal(size=(n, features))).astype(np.float32), y


def _protonn(scale: str = "common") -> ProtoNN:
    X, y = _blobs()
    torch.manual_seed(0)
    model = ProtoNN(ProtoNNConfig("protonn", 20, 3, projection_dim=5, prototypes=7,
                                  scale=scale))
    model.set_normalization(torch.from_numpy(X.mean(0)), torch.from_numpy(X.std(0)))
    model.init_from_data(X, y, seed=0)
    return model.eval()


def test_protonn_prototypes_start_class_wise_and_gamma_from_the_median_heuristic():
    X, y = _blobs()
    model = _protonn()
    assert prototypes_per_class(7, 3) == [3, 2, 2]
    labels = model.Z.detach().argmax(0).numpy()
    assert labels.tolist() == [0, 0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(model.Z.detach().sum(0).numpy(), np.ones(7))
    with torch.no_grad():
        p = model.project(torch.from_numpy(X)).double().numpy()
    B = model.B.detach().double().numpy()
    for j, label in enumerate(labels):  # each prototype is nearest to its own class's vectors
        nearest = np.argmin(((p[:, :, None] - B[None, :, j:j + 1]) ** 2).sum(1)[:, 0])
        assert y[nearest] == label
    distances = np.sqrt(((p[:, :, None] - B[None]) ** 2).sum(1))
    assert model.gamma.item() == pytest.approx(1 / (2.5 * np.median(distances)), rel=1e-5)
    # the nearest prototype's class is the label: the start that joint training refines
    assert (labels[distances.argmin(1)] == y).mean() > 0.95


def test_feature_vectors_as_one_step_and_sequences_refused():
    X, _ = _blobs(10)
    for model in (_protonn(), Bonsai(BonsaiConfig("bonsai", 20, 3)).eval()):
        with torch.no_grad():
            flat = model(torch.from_numpy(X))
            assert torch.equal(model(torch.from_numpy(X[:, None, :])), flat)
        with pytest.raises(KilomlError, match=r"takes feature vectors \[N, F\], got shape "
                                              r"\[10, 4, 5\]"):
            model(torch.from_numpy(X.reshape(10, 4, 5)))


@pytest.mark.parametrize("scale", ["common", "feature"])
def test_the_deployed_projection_folds_the_normalisation(scale):
    X, _ = _blobs(50)
    model = _protonn(scale)
    weight, bias = model.deployed_projection()
    x = torch.from_numpy(X).double()
    if scale == "feature":  # a normalize node runs first; the projection has no bias
        x = (x - model.input_mean.double()) / model.input_std.double()
        assert not bias.any()
    with torch.no_grad():
        np.testing.assert_allclose((x @ weight.T + bias).numpy(),
                                   model.project(torch.from_numpy(X)).double().numpy(),
                                   atol=1e-4)
    graph = lower_model(model, 1)
    assert [n.op for n in graph.nodes] == (["normalize"] if scale == "feature" else []) + [
        "projection", "rbf", "fully_connected", "argmax"]
    with torch.no_grad():
        reference = model(torch.from_numpy(X)).double().numpy()
    X3 = X[:, None, :]
    np.testing.assert_allclose(float_graph_logits(graph, X3), reference, atol=1e-4)
    quantized = quantize_model(model, X3, 16)
    integer = dequantize_output(quantized, simulate(quantized, quantize_input(quantized, X3)))
    assert np.abs(integer - reference).max() < 0.01 * np.abs(reference).max()


def test_bonsai_relaxed_paths_anneal_to_the_hard_ones():
    X, _ = _blobs(200)
    torch.manual_seed(0)
    model = Bonsai(BonsaiConfig("bonsai", 20, 3, projection_dim=4, depth=2))
    model.set_normalization(torch.from_numpy(X.mean(0)), torch.from_numpy(X.std(0)))
    with torch.no_grad():
        p = model.project(torch.from_numpy(X))
        model.train()
        model.anneal(0.0)
        soft = model.path_weights(p)
        assert float(model.sigma_i) == 1.0
        # every level of the tree shares each input out completely
        for first, last in ((0, 1), (1, 3), (3, 7)):
            np.testing.assert_allclose(soft[:, first:last].sum(1).numpy(), 1.0, atol=1e-6)
        assert ((soft[:, 3:] > 0.01) & (soft[:, 3:] < 0.99)).any()
        model.anneal(1.0)
        assert float(model.sigma_i) == pytest.approx(SIGMA_I_END)
        sharp = model.path_weights(p)
        model.eval()
        hard = model.path_weights(p)
    assert set(hard.unique().tolist()) == {0.0, 1.0}
    assert hard[:, 3:].sum(1).eq(1).all()
    assert (sharp - hard).abs().max() < 0.5 and (sharp - hard).abs().mean() < 0.01


def test_block_sparse_projections_are_accounted_as_exported_never_blocked():
    from kiloml.compress.size import model_size_bytes, model_storage

    model = _protonn()
    with torch.no_grad():  # W [5, 20]: two whole blocks of 4 per row
        model.W.zero_()
        model.W[:, :8] = 1.0
    storage = {t.name: t for t in model_storage(model, 1)}
    # blocked (10 blocks: 62 B) would be smaller than CSR (92 B), but kl_projection reads rows
    assert storage["W"].format == "csr" and storage["W"].bytes == 40 * 2 + 6 * 2 + 1
    graph = quantize_model(model, _blobs()[0][:64, None, :], bits=8)
    assert graph.flash_bytes() == model_size_bytes(model, 1)


def test_bonsai_trains_under_the_l2_penalty():
    """The penalty is sum lambda/2 ||M||^2 over Z, W, V, theta, and the Trainer adds it: on
    all-zero inputs the data loss has no gradient, so only the penalty moves (shrinks) weights."""
    torch.manual_seed(0)
    model = Bonsai(BonsaiConfig("bonsai", 20, 3, projection_dim=4, depth=2))
    expected = sum(L2[n] / 2 * float((getattr(model, n).detach().double() ** 2).sum()) for n in L2)
    assert model.penalty().item() == pytest.approx(expected, rel=1e-5)
    assert L2["Z"] == 1e-5 and L2["W"] == L2["V"] == L2["theta"] == 1e-4
    model.penalty().backward()
    np.testing.assert_allclose(model.Z.grad.numpy(), 1e-5 * model.Z.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(model.W.grad.numpy(), 1e-4 * model.W.detach().numpy(), rtol=1e-5)
    before = {n: getattr(model, n).detach().clone() for n in L2}
    zeros = Split(np.zeros((100, 1, 20), np.float32), np.arange(100) % 3)
    data = DatasetSplits("zeros", zeros, zeros, zeros, ["a", "b", "c"]).validate()
    result = Trainer(model, data, TrainConfig(epochs=1, batch_size=25, lr=1e-3)).fit()
    # the data loss is ln 3 (all scores 0); the penalty adds its few thousandths on top
    assert result.history[0].train_loss == pytest.approx(np.log(3) + expected, rel=1e-3)
    for name, old in before.items():
        assert (getattr(model, name).detach().abs() < old.abs()).all(), name


def test_bonsai_hard_thresholding_keeps_every_nodes_theta_row():
    """theta is thresholded row by row: a node whose branching weights are all small still keeps
    its share (global thresholding emptied the root's row, and the deployed tree then sent every
    input right), while the other matrices keep their global top fraction."""
    torch.manual_seed(0)
    model = Bonsai(BonsaiConfig("bonsai", 20, 3, projection_dim=10, depth=2))
    with torch.no_grad():
        model.theta[0] *= 1e-3  # the root's row: far below the others
        model.Z[0] *= 1e-3
    sparsity = Sparsity(sparsifiable_parameters(model), {"W": 0.2, "U": 0.2, "head": 1.0},
                        model=model)
    masks = sparsity.hard_threshold()
    assert masks["theta"].shape == (3, 10) and masks["theta"].sum(1).tolist() == [2, 2, 2]
    assert (model.theta != 0).sum(1).tolist() == [2, 2, 2]
    assert masks["Z"].sum() == 40 and masks["Z"][0].sum() == 0  # Z: global, its row 0 emptied


@pytest.mark.parametrize("scale", ["common", "feature"])
def test_bonsai_projects_as_edgeml_and_loads_configs_saved_before_the_scaling(scale):
    X, _ = _blobs(50)
    torch.manual_seed(0)
    model = Bonsai(BonsaiConfig("bonsai", 20, 3, projection_dim=4, depth=2, scale=scale))
    model.set_normalization(torch.from_numpy(X.mean(0)), torch.from_numpy(X.std(0)))
    model.eval()
    assert model.config.scaled_projection and 0.7 < model.Z.std().item() < 1.3  # N(0, 1)
    assert model.config.projection_bias and not model.Z_bias.any()
    with torch.no_grad():
        model.Z_bias.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        x = (torch.from_numpy(X) - model.input_mean) / model.input_std
        p = model.project(torch.from_numpy(X))
        reference = model(torch.from_numpy(X)).double().numpy()
    np.testing.assert_allclose(p.numpy(), (x @ model.Z.T / 4 + model.Z_bias).detach().numpy(),
                               rtol=1e-5, atol=1e-5)
    weight, bias = model.deployed_projection()
    seen = x.double() if scale == "feature" else torch.from_numpy(X).double()  # after normalize
    np.testing.assert_allclose((seen @ weight.T + bias).numpy(), p.double().numpy(), atol=1e-5)
    # the deployed graph carries the scaling and the bias
    np.testing.assert_allclose(float_graph_logits(lower_model(model, 1), X[:, None, :]),
                               reference, atol=1e-4)
    # a config saved without the fields is a model trained as p = Z x: it loads as one
    saved = {k: v for k, v in model.config.to_dict().items()
             if k not in ("scaled_projection", "projection_bias")}
    old = BonsaiConfig.from_dict(saved)
    assert not old.scaled_projection and not old.projection_bias
    new = BonsaiConfig.from_dict(model.config.to_dict())
    assert new.scaled_projection and new.projection_bias
    old_model = Bonsai(old)
    old_model.load_state_dict({k: v for k, v in model.state_dict().items() if k != "Z_bias"})
    with torch.no_grad():
        np.testing.assert_allclose(old_model.project(torch.from_numpy(X)).numpy(),
                                   (x @ model.Z.T).numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(KilomlError, match="projection_bias must be true or false"):
        BonsaiConfig("bonsai", 20, 3, projection_bias=1).validate()
