from kiloml.sweep.pareto import dominates, pareto_front

MODES = {"val_accuracy": "max", "bytes": "min"}


def p(acc, size):
    return {"val_accuracy": acc, "bytes": size}


def test_the_front_keeps_what_nothing_beats_on_both():
    points = [p(0.9, 1000), p(0.8, 500), p(0.85, 800), p(0.8, 900), p(0.95, 4000), p(0.7, 600)]
    assert pareto_front(points, MODES) == [p(0.9, 1000), p(0.8, 500), p(0.85, 800),
                                           p(0.95, 4000)]


def test_ties_keep_the_first_and_equal_is_not_dominance():
    a, b = p(0.8, 500), p(0.8, 500)
    assert not dominates(a, b, MODES)
    front = pareto_front([a, b, p(0.8, 600)], MODES)
    assert len(front) == 1 and front[0] is a
