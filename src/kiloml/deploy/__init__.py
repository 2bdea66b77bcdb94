"""Deployment: integer C code generation (:mod:`kiloml.deploy.export`) and its verification on
the host and emulated Cortex-M (:mod:`kiloml.deploy.verify`)."""
