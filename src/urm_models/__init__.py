"""urm-models: user relationship management models (docs/architecture.md draws the layers:
``core`` < ``data`` < the analysis packages < ``serve`` < ``jobs`` < ``cli``)."""

from .core import legacy

__version__ = "0.1.0"

# champions pickled under the flat layout's module names keep loading (core/legacy.py)
legacy.install()
