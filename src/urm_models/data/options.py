"""How a user's file is read: every option of the loaders in one object, each default decided
here once.

:class:`ReadOptions` is what :func:`urm_models.data.datasets.load_table`,
:func:`~urm_models.data.validation.validate_table` and the campaign loaders take whole; the
``read:`` mapping of a refresh's config and the CLI's reading flags build one by name.
:class:`CampaignOptions` says what a campaign file holds (its control arm, arms, outcomes,
features). The front doors (``load_transactions``, ``load_campaign``, ...) also take the
options' names as keywords, which build the objects (:func:`build`): one list of names and
defaults, whichever way a caller writes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Literal

from .contract import MAX_AMOUNT, MIN_DATE, Errors

_CHOICES = {
    "errors": ("raise", "quarantine"),
    "dst": ("reject", "shift"),
    "returns": ("reject", "keep"),
    "duplicates": ("reject", "keep"),
    "null_ids": ("refuse", "drop", "keep"),
}


@dataclass(frozen=True)
class ReadOptions:
    """How to read, parse and check a file; every field optional, the defaults read nothing by
    guessing.

    The file (:func:`urm_models.data.reading.read_raw`): ``sep`` (default: the one of
    ``, ; \\t |`` that splits the header), ``encoding``, ``names`` (column names instead of
    the header's). The columns: ``columns`` maps canonical names to the file's
    (``{"user_id": "customer"}``). The cells (:mod:`urm_models.data.parsing`): ``date_format``,
    ``tz``, ``dst``, ``decimal``, ``thousands``, ``currency``, ``max_amount``, ``min_date``,
    ``as_of`` (default: now), ``returns``. The rows: ``duplicates``, ``null_ids``,
    ``value_per_event`` (activity logs without amounts). Rows that break the contract:
    ``errors`` (``"raise"`` or ``"quarantine"``) and ``quarantine_dir`` (inside
    ``data/quarantine/``). ``dataset`` (default: the file's data set name) scopes erasures made
    with ``urm forget --dataset``. :func:`urm_models.data.validation.validate_table` documents
    each in full.
    """

    sep: str | None = None
    encoding: str = "utf-8"
    names: Sequence[str] | None = None
    columns: Mapping[str, str] | None = None
    date_format: str | None = None
    tz: str | None = None
    dst: Literal["reject", "shift"] = "reject"
    decimal: str | None = None
    thousands: str | None = None
    currency: str | None = None
    max_amount: float = MAX_AMOUNT
    min_date: object = MIN_DATE
    as_of: object = None
    returns: Literal["reject", "keep"] = "reject"
    duplicates: Literal["reject", "keep"] = "reject"
    null_ids: Literal["refuse", "drop", "keep"] = "refuse"
    value_per_event: float | None = None
    errors: Errors = "raise"
    quarantine_dir: str | Path | None = None
    dataset: str | None = None

    def __post_init__(self):
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                choices = ", ".join(map(repr, allowed[:-1])) + f" or {allowed[-1]!r}"
                raise ValueError(f"{name} must be {choices}, not {value!r}")
        try:
            positive = float(self.max_amount) > 0
        except (TypeError, ValueError):
            positive = False
        if not positive:
            raise ValueError(f"max_amount must be positive, not {self.max_amount!r}")
        if self.columns is not None and not isinstance(self.columns, Mapping):
            raise TypeError(f"columns must map canonical names to the file's, not {self.columns!r}")


@dataclass(frozen=True)
class CampaignOptions:
    """What a per-user campaign file holds: ``control`` names the control arm; ``outcomes``
    the outcome columns; ``features`` the pre-campaign features (default: every other column);
    ``arms`` (optional) declares every arm, control included, so that an arm without users is
    an error rather than silently absent; ``categorical`` keeps numeric-looking codes as
    categories. ``window`` says in words when the outcomes were measured, ``units`` gives the
    unit of each non-binary outcome (``{"spend": "USD"}``), ``value_feature`` the feature that
    measures a user's past value (for the economics)."""

    control: str
    outcomes: Sequence[str] = ()
    features: Sequence[str] | None = None
    arms: Sequence[str] | None = None
    categorical: Sequence[str] = ()
    window: str = ""
    units: Mapping[str, str] = field(default_factory=dict)
    value_feature: str = ""

    def __post_init__(self):
        if isinstance(self.outcomes, str):
            object.__setattr__(self, "outcomes", (self.outcomes,))
        object.__setattr__(self, "outcomes", tuple(self.outcomes))
        object.__setattr__(self, "units", dict(self.units or {}))


def option_names(cls=ReadOptions) -> list[str]:
    """The names of ``cls``'s options, in their order."""
    return [f.name for f in fields(cls)]


def build(by_name: Mapping, *given):
    """The option objects ``given`` (each an instance of its class, or the class itself for its
    defaults) with the options named in ``by_name`` changed: each name goes to the class that
    has it. A name no class has is refused with the known ones."""
    for g in given:
        if not (isinstance(g, type) or is_dataclass(g)):
            raise TypeError(
                f"options must be a ReadOptions (or CampaignOptions), not {type(g).__name__}: a mapping of "
                "canonical to file column names goes in columns={...}"
            )
    classes = [g if isinstance(g, type) else type(g) for g in given]
    changes = [{} for _ in given]
    for name, value in by_name.items():
        where = [i for i, cls in enumerate(classes) if name in option_names(cls)]
        if not where:
            known = sorted({n for cls in classes for n in option_names(cls)})
            raise TypeError(f"unknown option {name!r}; known: {known}")
        changes[where[0]][name] = value
    out = []
    for g, cls, change in zip(given, classes, changes, strict=True):
        out.append(cls(**change) if isinstance(g, type) else replace(g, **change) if change else g)
    return out[0] if len(out) == 1 else tuple(out)


__all__ = ["ReadOptions", "CampaignOptions", "option_names", "build"]
