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


MODES_3D = {"val_accuracy": "max", "bytes": "min", "m4_instructions": "min"}


def q(name, acc, size, instructions):
    return {"name": name, "val_accuracy": acc, "bytes": size, "m4_instructions": instructions}


def test_the_3d_front_keeps_what_is_fastest_even_when_2d_dominated():
    table = [
        q("a", 0.90, 1000, 50_000),
        q("b", 0.85, 1200, 20_000),  # beaten by a on accuracy and bytes, but faster
        q("c", 0.80, 1500, 60_000),  # beaten by a on all three
        q("d", 0.95, 4000, 90_000),
        q("e", 0.85, 1200, 25_000),  # b is as good on two and better on instructions
        q("f", 0.70, 600, 70_000),
        q("g", 0.90, 1000, 50_000),  # equal to a on all three: a comes first
        q("h", 0.85, 1300, 20_000),  # b is as good on two and better on bytes
    ]
    assert [p["name"] for p in pareto_front(table, MODES_3D)] == ["a", "b", "d", "f"]
    # on validation accuracy and bytes alone, b and its neighbours drop out
    assert [p["name"] for p in pareto_front(table, MODES)] == ["a", "d", "f"]
    assert dominates(table[1], table[4], MODES_3D)
    assert not dominates(table[0], table[1], MODES_3D)
