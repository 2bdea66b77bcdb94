"""The model families kiloml trains and deploys, by the name ``kiloml train --model`` takes.

A family is its torch module, the config that rebuilds it (stored in ``config.json`` under
``"model"``, with ``kind`` naming the family), what input it takes, and whether it deploys.
Every module of a family follows one contract: ``config``, ``input_mean``/``input_std``
buffers and ``set_normalization(mean, std)``, ``forward(x [B, T, F]) -> logits [B, C]`` (a
``vector`` family takes ``[B, F]``, which kiloml's splits hold as ``[B, 1, F]``), and
``sparsity_groups()`` naming the matrices the compression phases act on; an ``image`` family
takes images (kiloml's rows ``[B, H, W·C]`` or ``[B, C, H, W]``) of the size in its config.
Its integer lowering lives in :mod:`kiloml.ir.lower` (families know nothing of the integer graph).
"""

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from kiloml.errors import KilomlError
from kiloml.nn.bonsai import BonsaiConfig, build_bonsai
from kiloml.nn.cascade import CascadeConfig, build_cascade
from kiloml.nn.classifier import ModelConfig, SequenceClassifier
from kiloml.nn.dscnn import DSCNNConfig, build_dscnn
from kiloml.nn.emi import EMIConfig, build_emi_fastgrnn
from kiloml.nn.mobilenetv2 import MobileNetV2Config, build_mobilenetv2
from kiloml.nn.protonn import ProtoNNConfig, build_protonn
from kiloml.nn.rnnpool_mobilenetv2 import RNNPoolMobileNetV2Config, build_rnnpool_mobilenetv2
from kiloml.nn.sharnn import ShaRNNConfig, build_sharnn


@dataclass(frozen=True)
class Family:
    """One ``--model`` choice."""

    name: str
    description: str
    config: type
    build: Callable[..., nn.Module]
    input_kind: str = "sequence"  # [N, T, F] frames, "vector": [N, F] features, or "image"
    deploys: bool = True  # has an integer lowering (kiloml export)


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


for _name, _description in (
        ("fastgrnn", "FastGRNN (Kusupati et al. 2018): gated RNN, low-rank and sparse"),
        ("fastrnn", "FastRNN (Kusupati et al. 2018): RNN with a trained residual step"),
        ("gru", "torch.nn.GRU, the baseline the FastGRNN paper compares with"),
        ("lstm", "torch.nn.LSTM")):
    register(Family(_name, _description, ModelConfig, SequenceClassifier))
register(Family("sharnn", "ShaRNN (Dennis et al. 2019): a shared lower RNN over bricks of k "
                          "steps, an upper RNN over the bricks' summaries", ShaRNNConfig,
                build_sharnn))
register(Family("emi-fastgrnn", "EMI-FastGRNN (Dwivedi, Kusupati et al. 2018): instances of "
                                "each sequence relabelled in rounds, early exit", EMIConfig,
                build_emi_fastgrnn))
register(Family("cascade", "MSC-RNN-style cascade (Saha, Kusupati et al. 2019): a small "
                           "FastGRNN tells nothing from something, a larger one classifies only "
                           "where it fires", CascadeConfig, build_cascade, deploys=False))
register(Family("dscnn", "1-D depthwise-separable CNN, the shape of the MLPerf Tiny "
                         "keyword-spotting DS-CNN", DSCNNConfig, build_dscnn))
register(Family("protonn", "ProtoNN (Gupta et al. 2017): sparse projection, prototypes "
                           "and label vectors", ProtoNNConfig, build_protonn, "vector"))
register(Family("bonsai", "Bonsai (Kumar et al. 2017): sparse projection and a shallow tree of "
                          "non-linear node predictors", BonsaiConfig, build_bonsai, "vector"))
register(Family("mobilenetv2", "MobileNetV2 (Sandler et al. 2018): inverted residual blocks, "
                               "ReLU6, a width multiplier; images", MobileNetV2Config,
                build_mobilenetv2, "image"))
register(Family("rnnpool-mobilenetv2", "RNNPool-MobileNetV2 (Saha et al. 2020): the stem, one "
                                       "RNNPool layer, then MobileNetV2's later stages; images",
                RNNPoolMobileNetV2Config, build_rnnpool_mobilenetv2, "image"))

INPUT_SHAPES = {"sequence": "sequences [N, T, F]", "vector": "feature vectors [N, F]",
                "image": "images [N, C, H, W]"}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise KilomlError(f"unknown model {name!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def config_from_dict(data: dict):
    """The config of the family named by ``data["kind"]`` (``config.json``'s ``"model"``)."""
    return get_family(data.get("kind", "")).config.from_dict(data)


def build_model(config) -> nn.Module:
    """A freshly initialised module for ``config`` (seed torch first for reproducibility)."""
    return get_family(config.kind).build(config)
