"""ProtoNN (Gupta et al., ICML 2017): a sparse low-dimensional projection ``W``, learned
prototypes ``B`` with label vectors ``Z`` and one RBF width ``gamma``.

For a feature vector ``x`` ``[F]`` (normalised: centred per feature, divided by one common
standard deviation, see :meth:`ProtoNN.set_normalization`)::

    p = W x                                  [d]
    s_j = exp(-gamma^2 * ||p - b_j||^2)      [m]   (b_j: column j of B)
    scores = Z s                             [C]

trained jointly (cross-entropy on the scores) with iterative hard thresholding of ``W``, ``B``
and ``Z`` to their budgets. Initialisation (:meth:`ProtoNN.init_from_data`): ``W`` random
Gaussian, prototypes by k-means of each class's projected training vectors (``m / C`` per
class), ``Z`` the one-hot label of each prototype's class, and EdgeML's median heuristic
``gamma = 1 / (2.5 * median ||Wx - b_j||)`` over training vectors and prototypes.

Input: ``[B, F]``, or ``[B, 1, F]`` (how kiloml's splits hold a feature vector: one step of
``F`` features). State-dict keys: ``input_mean`` ``[F]``, ``input_std`` ``[F]`` (one value
repeated), ``W`` ``[d, F]``, ``B`` ``[d, m]``, ``Z`` ``[C, m]``, ``gamma`` ``[1]``.
"""

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

from kiloml.errors import KilomlError

#: Largest projection dimension (the integer RBF's exact int64 distance relies on it).
MAX_PROJECTION = 255
SCALES = ("common", "feature")


@dataclass
class ProtoNNConfig:
    """Everything needed to rebuild a :class:`ProtoNN` (no weights). ``scale``: ``common``
    divides every centred feature by one standard deviation (pixels share their units, and a
    per-pixel one folded into ``W`` would blow its range up at near-constant border pixels),
    ``feature`` by each feature's own."""

    kind: str
    input_size: int
    num_classes: int
    projection_dim: int = 10
    prototypes: int = 20
    gamma: float | None = None
    scale: str = "common"

    def validate(self) -> "ProtoNNConfig":
        if self.kind != "protonn":
            raise KilomlError(f"a ProtoNN config needs kind 'protonn', got {self.kind!r}")
        for name in ("input_size", "num_classes", "projection_dim", "prototypes"):
            if int(getattr(self, name)) < 1:
                raise KilomlError(f"{name.replace('_', '-')} must be a positive integer")
        if self.num_classes < 2:
            raise KilomlError("a classifier needs at least 2 classes")
        if self.projection_dim > MAX_PROJECTION:
            raise KilomlError(f"projection-dim must be at most {MAX_PROJECTION}, "
                              f"got {self.projection_dim}")
        if self.prototypes < self.num_classes:
            raise KilomlError(f"prototypes must be at least the number of classes "
                              f"({self.num_classes}), got {self.prototypes}")
        if self.gamma is not None and not (np.isfinite(self.gamma) and self.gamma > 0):
            raise KilomlError(f"gamma must be a positive number, got {self.gamma}")
        if self.scale not in SCALES:
            raise KilomlError(f"unknown scale {self.scale!r}; choose one of {', '.join(SCALES)}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ProtoNNConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise KilomlError(f"model config has unknown fields {sorted(unknown)}")
        return cls(**data).validate()


def feature_vectors(x: torch.Tensor, kind: str) -> torch.Tensor:
    """``[B, F]`` from ``[B, F]`` or ``[B, 1, F]``; a one-line error for longer sequences."""
    if x.dim() == 3 and x.shape[1] == 1:
        return x[:, 0]
    if x.dim() != 2:
        raise KilomlError(f"{kind} takes feature vectors [N, F], got shape {list(x.shape)}; "
                          "flatten each example into one vector")
    return x


def common_std(std: torch.Tensor) -> torch.Tensor:
    """One standard deviation for all features: the root of the mean per-feature variance."""
    return torch.sqrt(torch.mean(std.double() ** 2)).float().expand(std.shape).clone()


def kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 20
           ) -> np.ndarray:
    """``k`` centres ``[k, d]`` of ``points`` ``[n, d]`` by Lloyd's algorithm from ``k``
    distinct random points (an emptied cluster keeps its centre)."""
    k = min(k, len(points))
    centres = points[rng.choice(len(points), size=k, replace=False)].copy()
    for _ in range(iterations):
        d2 = ((points[:, None, :] - centres[None]) ** 2).sum(-1)
        nearest = d2.argmin(1)
        for j in range(k):
            members = points[nearest == j]
            if len(members):
                centres[j] = members.mean(0)
    return centres


def prototypes_per_class(total: int, classes: int) -> list[int]:
    """``total`` prototypes spread over ``classes`` as evenly as possible (the first classes
    get one more)."""
    return [total // classes + (c < total % classes) for c in range(classes)]


class ProtoNN(nn.Module):
    """Classifies feature vectors ``[B, F]`` into ``C`` classes; returns scores ``[B, C]``."""

    def __init__(self, config: ProtoNNConfig):
        super().__init__()
        self.config = c = config.validate()
        self.register_buffer("input_mean", torch.zeros(c.input_size))
        self.register_buffer("input_std", torch.ones(c.input_size))
        self.W = nn.Parameter(torch.randn(c.projection_dim, c.input_size)
                              / np.sqrt(c.input_size))
        self.B = nn.Parameter(torch.randn(c.projection_dim, c.prototypes))
        labels = torch.arange(c.prototypes) % c.num_classes
        self.Z = nn.Parameter(nn.functional.one_hot(labels, c.num_classes).T.float())
        self.gamma = nn.Parameter(torch.tensor([c.gamma or 1.0]))

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store per-feature ``mean`` ``[F]`` and the standard deviation ``[F]``: each
        feature's own (``scale='feature'``) or :func:`common_std` repeated."""
        std = torch.as_tensor(std, dtype=torch.float32)
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(std if self.config.scale == "feature" else common_std(std))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``W`` times the normalised input: ``[B, d]``."""
        x = feature_vectors(x, "protonn")
        return ((x - self.input_mean) / self.input_std) @ self.W.T

    def similarities(self, x: torch.Tensor) -> torch.Tensor:
        """``exp(-gamma^2 ||Wx - b_j||^2)``: ``[B, m]``."""
        p = self.project(x)
        dist = ((p[:, :, None] - self.B[None]) ** 2).sum(1)
        return torch.exp(-self.gamma ** 2 * dist)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.similarities(x) @ self.Z.T

    @torch.no_grad()
    def init_from_data(self, x: np.ndarray, y: np.ndarray, seed: int = 0,
                       max_points: int = 20000) -> None:
        """Prototypes by class-wise k-means of the projected training vectors ``x``
        (``[N, F]`` or ``[N, 1, F]``, at most ``max_points`` of them drawn at random), ``Z``
        one-hot, and ``gamma`` by the median heuristic unless the config fixes it. Call after
        :meth:`set_normalization`."""
        rng = np.random.default_rng(seed)
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        if len(x) > max_points:
            keep = rng.choice(len(x), size=max_points, replace=False)
            x, y = x[keep], np.asarray(y)[keep]
        p = self.project(torch.from_numpy(x)).double().numpy()
        counts = prototypes_per_class(self.config.prototypes, self.config.num_classes)
        columns, labels = [], []
        for label, count in enumerate(counts):
            members = p[np.asarray(y) == label]
            if not len(members):
                members = p
            centres = kmeans(members, count, rng)
            while len(centres) < count:  # fewer examples than prototypes: repeat some
                centres = np.concatenate([centres, centres[:count - len(centres)]])
            columns.append(centres)
            labels += [label] * count
        self.B.copy_(torch.from_numpy(np.concatenate(columns).T))
        self.Z.copy_(nn.functional.one_hot(torch.tensor(labels), self.config.num_classes).T)
        if self.config.gamma is None:
            dist = np.sqrt(((p[:, :, None] - self.B.double().numpy()[None]) ** 2).sum(1))
            median = float(np.median(dist))
            self.gamma.fill_(1.0 / (2.5 * median) if median > 0 else 1.0)

    def sparsity_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """``W`` (the projection, ``--sparsity-w``), ``U`` (the prototypes ``B``,
        ``--sparsity-u``) and ``head`` (the label vectors ``Z``, ``--sparsity-head``)."""
        return {"W": [("W", self.W)], "U": [("B", self.B)], "head": [("Z", self.Z)]}

    @property
    def folds_normalization(self) -> bool:
        """Whether deployment folds the normalisation into the projection (``scale='common'``:
        one standard deviation keeps ``W``'s range) or normalises each feature first."""
        return self.config.scale == "common"

    @torch.no_grad()
    def deployed_projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight [d, F], bias [d])`` in float64 of the deployed projection: with the
        normalisation folded in, ``W / std`` and ``-(W / std) mean`` (the sparsity is
        ``W``'s), else ``W`` and zeros (the input is normalised before it)."""
        if not self.folds_normalization:
            return self.W.double(), torch.zeros(self.config.projection_dim,
                                                dtype=torch.float64)
        weight = self.W.double() / self.input_std.double()[None, :]
        return weight, -(weight @ self.input_mean.double())

    @torch.no_grad()
    def deployed_tensors(self) -> dict[str, torch.Tensor]:
        """What the integer model stores: the normalisation unless it is folded, the
        projection and its bias (int16), the prototypes (dense, flattened ``[m * d]``),
        ``gamma^2`` and ``Z``'s rows with a zero bias."""
        out = {} if self.folds_normalization else {
            "input_mean": self.input_mean.double(), "input_std": self.input_std.double()}
        weight, bias = self.deployed_projection()
        out.update({"W": weight, "W_bias": bias, "B": self.B.double().T.reshape(-1),
                    "gamma2": self.gamma.double() ** 2, "Z": self.Z.double(),
                    "Z_bias": torch.zeros(self.config.num_classes, dtype=torch.float64)})
        return out

    def int16_tensors(self) -> tuple[str, ...]:
        """Tensors stored int16 whatever the weight width: the projection's bias (it carries
        the folded mean; ``d`` values)."""
        return ("W_bias",)

    def unblocked_tensors(self) -> tuple[str, ...]:
        """Matrices never stored blocked: the projection (its kernel reads single rows)."""
        return ("W",)

    def macs(self, steps: int = 1) -> int:
        """Multiply-accumulates of one inference: ``W``'s nonzeros, ``d`` per prototype for the
        distance and one for ``gamma^2``, and ``Z``'s nonzeros."""
        c = self.config
        return (int(torch.count_nonzero(self.W)) + c.prototypes * (c.projection_dim + 1)
                + int(torch.count_nonzero(self.Z)))


def build_protonn(config: ProtoNNConfig) -> ProtoNN:
    """A freshly initialised ProtoNN for ``config`` (seed torch first for reproducibility)."""
    return ProtoNN(config)
