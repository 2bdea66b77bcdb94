"""Torch modules: FastRNN/FastGRNN cells and layers, and the sequence classifier around them."""

from kiloml.nn.classifier import MODEL_KINDS, ModelConfig, SequenceClassifier, build_model
from kiloml.nn.fastrnn import FastGRNN, FastGRNNCell, FastRNN, FastRNNCell

__all__ = ["FastGRNN", "FastGRNNCell", "FastRNN", "FastRNNCell", "MODEL_KINDS", "ModelConfig",
           "SequenceClassifier", "build_model"]
