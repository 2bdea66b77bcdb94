"""The Pareto front of a sweep: the trials no other trial beats on every objective."""


def dominates(a: dict, b: dict, objectives: dict[str, str]) -> bool:
    """Whether ``a`` is at least as good as ``b`` on every objective (name -> ``"max"`` or
    ``"min"``) and better on one."""
    better = False
    for name, mode in objectives.items():
        x, y = (a[name], b[name]) if mode == "max" else (b[name], a[name])
        if x < y:
            return False
        better = better or x > y
    return better


def pareto_front(points: list[dict], objectives: dict[str, str]) -> list[dict]:
    """The points of ``points`` that no other point dominates, in their order; of points
    equal on every objective, the first."""
    front = []
    for i, p in enumerate(points):
        if any(dominates(q, p, objectives) for q in points):
            continue
        if any(all(q[k] == p[k] for k in objectives) for q in points[:i] if q in front):
            continue
        front.append(p)
    return front
