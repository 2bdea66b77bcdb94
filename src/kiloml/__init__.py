"""kiloml: train, compress and deploy kilobyte-sized recurrent models for microcontrollers."""

__version__ = "0.1.0"

#: Version of the run-directory format (config.json / model.safetensors / metrics.json).
#: Bumped whenever a saved run could no longer be rebuilt by older code.
RUN_FORMAT_VERSION = 1
