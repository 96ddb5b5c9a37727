"""mskdx: reproduce deep-learning diagnosis studies on musculoskeletal images."""

__version__ = "0.1.0"
