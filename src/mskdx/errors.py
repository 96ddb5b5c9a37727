"""Error types: each names the offending file or key, the problem and the expectation."""


class MskdxError(Exception):
    """Base class of every error mskdx raises on purpose."""


class DicomError(MskdxError, ValueError):
    """A file that cannot be turned into a correct image."""


class LabelError(MskdxError, ValueError):
    """A label sheet that does not match the images (missing, duplicated, unknown patients)."""


class ConfigError(MskdxError, ValueError):
    """A config value of the wrong type or range."""


class SplitError(MskdxError, ValueError):
    """A split that leaks patients between subsets or cannot be built."""


class PreprocessError(MskdxError, ValueError):
    """An image that preprocessing cannot handle (too small, no B-mode region, blank)."""


class PredictionsError(MskdxError, ValueError):
    """A predictions table that cannot be compared (missing columns, bad values, unpaired arms)."""
