"""The flat layout's module names, kept importable for what was stored under them.

Until 2026-12 the package was flat (``urm_models.scoring``, ``urm_models.mlflow_models``, ...).
MLflow pyfunc models are pickled with cloudpickle, which stores a class by its module's dotted
name: a champion registered then holds ``urm_models.mlflow_models.CLVPyfunc``. So that such a
model keeps loading, each old name below is an alias of the module that now holds its code:
importing ``urm_models.scoring`` returns the module ``urm_models.serve.scoring`` itself (the same
object, not a copy), imported only when an old name is asked for.

This is the one place that knows the old names. The package, its notebooks, tests and docs use
the new ones (``tests/test_structure.py`` checks it); drop an alias only when no stored model or
pickle can still name it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: old dotted name -> the module that holds its code now
MODULES = {
    "urm_models.paths": "urm_models.core.paths",
    "urm_models.io": "urm_models.core.io",
    "urm_models.settings": "urm_models.core.settings",
    "urm_models.redaction": "urm_models.core.redaction",
    "urm_models.privacy": "urm_models.core.privacy",
    "urm_models.locks": "urm_models.core.locks",
    "urm_models.sql": "urm_models.core.sql",
    "urm_models.spark": "urm_models.core.spark",
    "urm_models.parsing": "urm_models.data.parsing",
    "urm_models.reading": "urm_models.data.reading",
    "urm_models.validation": "urm_models.data.validation",
    "urm_models.parquet_contract": "urm_models.data.parquet_contract",
    "urm_models.erasure": "urm_models.data.erasure",
    "urm_models.datasets": "urm_models.data.datasets",
    "urm_models.campaigns": "urm_models.data.campaign_files",
    "urm_models.simulate": "urm_models.data.simulate",
    "urm_models.economics": "urm_models.data.economics",
    "urm_models.evaluation.campaigns": "urm_models.evaluation.campaign_plots",
    "urm_models.experiments.intervals": "urm_models.evaluation.intervals",
    "urm_models.scoring": "urm_models.serve.scoring",
    "urm_models.spark_scoring": "urm_models.serve.spark_scoring",
    "urm_models.sqltable": "urm_models.serve.sqltable",
    "urm_models.tracking": "urm_models.serve.tracking",
    "urm_models.mlflow_models": "urm_models.serve.mlflow_models",
    "urm_models.pipeline": "urm_models.jobs.pipeline",
    "urm_models.forget": "urm_models.jobs.forget",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old name and loads it as the new module: the import system then keeps that module
    under the old name in ``sys.modules`` (the module a loader leaves there is what an import returns)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return None  # a placeholder module; exec_module replaces it

    def exec_module(self, module) -> None:
        sys.modules[module.__spec__.name] = importlib.import_module(MODULES[module.__spec__.name])


_FINDER = _Alias()


def install() -> None:
    """Put the aliases on the import path (once; after the real finders, so they never shadow a module)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_FINDER)
