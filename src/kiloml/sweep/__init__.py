"""``kiloml sweep``: a search over ``kiloml train`` options on Ray Tune with Optuna
(``space.py``: the TOML file; ``trial.py``: one trial on a worker; ``instructions.py``: its
Cortex-M4 instructions; ``searcher.py``: Optuna told of stopped trials; ``driver.py``: Ray and
the searcher; ``pareto.py``: the front; ``results.py``: the table and the test split)."""
