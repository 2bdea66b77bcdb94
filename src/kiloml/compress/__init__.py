"""Compression: hard thresholding (IHT supports) and model-size / MAC accounting."""
