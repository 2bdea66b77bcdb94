"""Bonsai (Kumar et al., ICML 2017): a sparse projection ``Z`` and a shallow binary tree whose
every node on the path of an input adds a non-linear predictor.

For a feature vector ``x`` ``[F]`` (normalised as for ProtoNN: centred per feature, divided by
one common standard deviation, see :meth:`Bonsai.set_normalization`) and ``p = Z x / d + b``
``[d]`` (EdgeML's parameterisation: ``Z`` starts N(0, 1) and the projection is divided by
``d``; ``b`` is the column EdgeML's examples give ``Z`` by appending a 1 to ``x``; see
:attr:`BonsaiConfig.scaled_projection` and :attr:`BonsaiConfig.projection_bias`)::

    scores = sum over the nodes k on x's path of  (W_k p) * tanh(sigma * V_k p)     [C]

Nodes are numbered breadth first (root 0, children of k: 2k+1 left, 2k+2 right); an internal
node sends ``x`` left when ``theta_k . p > 0``. Training relaxes the path: node ``k``'s weight
is its parent's times ``(1 +/- tanh(sigma_I theta_parent . p)) / 2``, with ``sigma_I`` annealed
from 1 to :data:`SIGMA_I_END` over training (:meth:`Bonsai.anneal`, called by the Trainer with
the fraction of training done), so that the end of training sees (nearly) the hard paths that
evaluation and deployment take. ``Z``, ``W``, ``V`` and ``theta`` train jointly with hard
thresholding to their budgets, under the paper's L2 penalty (:meth:`Bonsai.penalty`,
:data:`L2`; without it, ten-class MNIST at 20 % budgets lost 6 points of validation accuracy at
hard thresholding and did not regain them); ``theta`` is thresholded node by node
(:attr:`Bonsai.rowwise_sparsity`). A binary problem has two scores (cross-entropy),
not EdgeML's one score with a hinge loss.

Input: ``[B, F]`` or ``[B, 1, F]``. State-dict keys: ``input_mean``, ``input_std`` ``[F]``,
``sigma_i`` ``[1]`` (the annealed path sharpness), ``Z`` ``[d, F]``, ``W`` and ``V``
``[nodes, C, d]``, ``theta`` ``[internal nodes, d]``.
"""

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from kiloml.errors import KilomlError
from kiloml.nn.protonn import SCALES, common_std, feature_vectors

#: Deepest tree (internal nodes 2^depth - 1, nodes 2^(depth+1) - 1).
MAX_DEPTH = 6
#: The path sharpness sigma_I at the end of training (it starts at 1).
SIGMA_I_END = 1000.0
#: The L2 penalty's weight per matrix (the paper's lambda; EdgeML's example values), added to the
#: training loss as ``sum lambda / 2 * ||matrix||^2`` (:meth:`Bonsai.penalty`).
L2 = {"Z": 1e-5, "W": 1e-4, "V": 1e-4, "theta": 1e-4}


@dataclass
class BonsaiConfig:
    """Everything needed to rebuild a :class:`Bonsai` (no weights); ``scale`` as for
    :class:`kiloml.nn.protonn.ProtoNNConfig`."""

    kind: str
    input_size: int
    num_classes: int
    projection_dim: int = 10
    depth: int = 2
    sigma: float = 1.0
    scale: str = "common"
    #: ``p = Z x / d`` with ``Z`` initialised N(0, 1), as EdgeML's Bonsai (True); False is
    #: ``p = Z x`` with ``Z`` N(0, 1/F), the models saved before this field. Adam's steps have
    #: one size per value, so the scaled form moves the projection about sqrt(F) times less
    #: per step relative to its values; ten-class MNIST at EdgeML's example settings gained
    #: 1.4 points of validation accuracy (3 seeds; docs/benchmarks.md).
    scaled_projection: bool = True
    #: A learned bias ``b`` ``[d]`` of the projection (starts at 0; neither thresholded nor
    #: penalised; deployed in the projection's bias, which is stored anyway). Without it every
    #: branching hyperplane ``theta_k . p = 0`` passes through the inputs' mean. False for the
    #: configs saved before this field.
    projection_bias: bool = True

    def validate(self) -> "BonsaiConfig":
        if self.kind != "bonsai":
            raise KilomlError(f"a Bonsai config needs kind 'bonsai', got {self.kind!r}")
        for name in ("input_size", "num_classes", "projection_dim"):
            if int(getattr(self, name)) < 1:
                raise KilomlError(f"{name.replace('_', '-')} must be a positive integer")
        if self.num_classes < 2:
            raise KilomlError("a classifier needs at least 2 classes")
        if not 0 <= int(self.depth) <= MAX_DEPTH:
            raise KilomlError(f"depth must be from 0 to {MAX_DEPTH}, got {self.depth}")
        if not (np.isfinite(self.sigma) and self.sigma > 0):
            raise KilomlError(f"sigma must be a positive number, got {self.sigma}")
        if self.scale not in SCALES:
            raise KilomlError(f"unknown scale {self.scale!r}; choose one of {', '.join(SCALES)}")
        for name in ("scaled_projection", "projection_bias"):
            if not isinstance(getattr(self, name), bool):
                raise KilomlError(f"{name} must be true or false, got {getattr(self, name)!r}")
        return self

    @property
    def nodes(self) -> int:
        return 2 ** (self.depth + 1) - 1

    @property
    def internal_nodes(self) -> int:
        return 2 ** self.depth - 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "BonsaiConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise KilomlError(f"model config has unknown fields {sorted(unknown)}")
        # saved before scaled_projection existed: p = Z x
        return cls(**{"scaled_projection": False, "projection_bias": False, **data}).validate()


class Bonsai(nn.Module):
    """Classifies feature vectors ``[B, F]`` into ``C`` classes; returns scores ``[B, C]``."""

    def __init__(self, config: BonsaiConfig):
        super().__init__()
        self.config = c = config.validate()
        self.register_buffer("input_mean", torch.zeros(c.input_size))
        self.register_buffer("input_std", torch.ones(c.input_size))
        self.register_buffer("sigma_i", torch.ones(1))
        d = c.projection_dim
        self.Z = nn.Parameter(torch.randn(d, c.input_size) / (
            1.0 if c.scaled_projection else np.sqrt(c.input_size)))
        if c.projection_bias:
            self.Z_bias = nn.Parameter(torch.zeros(d))
        self.W = nn.Parameter(torch.randn(c.nodes, c.num_classes, d) / np.sqrt(d))
        self.V = nn.Parameter(torch.randn(c.nodes, c.num_classes, d) / np.sqrt(d))
        self.theta = nn.Parameter(torch.randn(max(c.internal_nodes, 1), d) / np.sqrt(d))

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """As :meth:`kiloml.nn.protonn.ProtoNN.set_normalization`."""
        std = torch.as_tensor(std, dtype=torch.float32)
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(std if self.config.scale == "feature" else common_std(std))

    def anneal(self, progress: float) -> None:
        """Set the path sharpness for ``progress`` (0..1) through training: ``sigma_I`` grows
        geometrically from 1 to :data:`SIGMA_I_END`."""
        self.sigma_i.fill_(SIGMA_I_END ** min(max(progress, 0.0), 1.0))

    #: Hard thresholding keeps ``--sparsity-u`` of every node's ``theta`` row: a node whose row
    #: is emptied (global thresholding did that to the root on ten-class MNIST) sends every
    #: input right when deployed while training saw a 50/50 mix of its children.
    rowwise_sparsity = ("theta",)

    def penalty(self) -> torch.Tensor:
        """The L2 penalty the Trainer adds to the loss: ``sum over Z, W, V, theta of
        L2[name] / 2 * ||matrix||^2`` (a scalar)."""
        return sum(L2[name] / 2 * getattr(self, name).square().sum() for name in L2)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``Z`` times the normalised input (divided by ``d`` with ``scaled_projection``), plus
        ``Z_bias`` with ``projection_bias``: ``[B, d]``."""
        x = feature_vectors(x, "bonsai")
        p = ((x - self.input_mean) / self.input_std) @ self.projection_matrix().T
        return p + self.Z_bias if self.config.projection_bias else p

    def projection_matrix(self) -> torch.Tensor:
        """The projection applied to the normalised input: ``Z / d`` or ``Z`` ``[d, F]``."""
        c = self.config
        return self.Z / c.projection_dim if c.scaled_projection else self.Z

    def path_weights(self, p: torch.Tensor) -> torch.Tensor:
        """``[B, nodes]``: each node's share of each input, relaxed in training
        (``sigma_I``), 0 or 1 (the hard path) in evaluation."""
        c = self.config
        weights = [torch.ones(len(p), dtype=p.dtype, device=p.device)]
        for k in range(c.internal_nodes):
            z = p @ self.theta[k]
            if self.training:
                left = (1 + torch.tanh(self.sigma_i * z)) / 2
            else:
                left = (z > 0).to(p.dtype)
            weights += [weights[k] * left, weights[k] * (1 - left)]
        return torch.stack(weights, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.project(x)
        w = torch.einsum("ncd,bd->bnc", self.W, p)
        v = torch.tanh(self.config.sigma * torch.einsum("ncd,bd->bnc", self.V, p))
        return (self.path_weights(p)[:, :, None] * w * v).sum(1)

    def sparsity_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """``W`` (the projection ``Z``, ``--sparsity-w``), ``U`` (the branching ``theta``,
        ``--sparsity-u``) and ``head`` (the node predictors ``W`` and ``V``,
        ``--sparsity-head``)."""
        groups = {"W": [("Z", self.Z)], "head": [("W", self.W), ("V", self.V)]}
        if self.config.internal_nodes:
            groups["U"] = [("theta", self.theta)]
        return groups

    @property
    def folds_normalization(self) -> bool:
        """As :attr:`kiloml.nn.protonn.ProtoNN.folds_normalization`."""
        return self.config.scale == "common"

    @torch.no_grad()
    def deployed_projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight [d, F], bias [d])`` in float64 of the deployed projection (the
        normalisation folded in for ``scale='common'``, else ``Z / d`` or ``Z``; the bias
        carries ``Z_bias`` and the folded mean)."""
        z = self.projection_matrix().double()
        bias = (self.Z_bias.double() if self.config.projection_bias
                else torch.zeros(self.config.projection_dim, dtype=torch.float64))
        if not self.folds_normalization:
            return z, bias
        weight = z / self.input_std.double()[None, :]
        return weight, bias - weight @ self.input_mean.double()

    @torch.no_grad()
    def deployed_tensors(self) -> dict[str, torch.Tensor]:
        """What the integer model stores: the normalisation unless folded, the projection and
        its int16 bias, every node's ``W_k`` and ``sigma V_k`` ``[C, d]`` (one matrix each) and
        ``theta`` ``[internal, d]`` (none for a depth-0 tree)."""
        out = {} if self.folds_normalization else {
            "input_mean": self.input_mean.double(), "input_std": self.input_std.double()}
        weight, bias = self.deployed_projection()
        out.update({"Z": weight, "Z_bias": bias})
        for k in range(self.config.nodes):
            out[f"W.{k}"] = self.W[k].double()
            out[f"V.{k}"] = self.config.sigma * self.V[k].double()
        if self.config.internal_nodes:
            out["theta"] = self.theta.double()
        return out

    def int16_tensors(self) -> tuple[str, ...]:
        """The projection's bias is stored int16 (it carries the folded mean)."""
        return ("Z_bias",)

    def unblocked_tensors(self) -> tuple[str, ...]:
        """Matrices never stored blocked: the projection and the tree's (their kernels read
        single rows)."""
        return tuple(name for name in self.deployed_tensors() if name != "Z_bias")

    def macs(self, steps: int = 1) -> int:
        """Multiply-accumulates of one inference, counted on the longest path: ``Z``'s
        nonzeros, per node on the path the nonzeros of its largest ``W_k`` and ``V_k`` and
        ``C`` products, per internal node on it the nonzeros of the largest ``theta_k``."""
        c = self.config
        per_node = max(int(torch.count_nonzero(self.W[k]) + torch.count_nonzero(self.V[k]))
                       for k in range(c.nodes)) + c.num_classes
        theta = max((int(torch.count_nonzero(self.theta[k])) for k in range(c.internal_nodes)),
                    default=0)
        return int(torch.count_nonzero(self.Z)) + (c.depth + 1) * per_node + c.depth * theta


def build_bonsai(config: BonsaiConfig) -> Bonsai:
    """A freshly initialised Bonsai for ``config`` (seed torch first for reproducibility)."""
    return Bonsai(config)
