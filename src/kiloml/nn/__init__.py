"""Torch modules: FastRNN/FastGRNN cells and layers, the sequence classifier around them, and
RNNPool."""

from kiloml.nn.classifier import MODEL_KINDS, ModelConfig, SequenceClassifier, build_model
from kiloml.nn.fastrnn import FastGRNN, FastGRNNCell, FastRNN, FastRNNCell
from kiloml.nn.rnnpool import RNNPool, RNNPoolLayer

__all__ = ["FastGRNN", "FastGRNNCell", "FastRNN", "FastRNNCell", "MODEL_KINDS", "ModelConfig",
           "RNNPool", "RNNPoolLayer", "SequenceClassifier", "build_model"]
