"""``kiloml sweep``: a search over ``kiloml train`` options on Ray Tune with Optuna
(``space.py``: the TOML file; ``trial.py``: one trial on a worker; ``driver.py``: Ray and the
searcher; ``pareto.py``: the front; ``results.py``: the table, test split and instructions)."""
