"""The package's version, in one small module: `sim.__version__` and every
manifest read it from here, so nothing below the API imports `sim` for it."""

__version__ = "0.1.0"
