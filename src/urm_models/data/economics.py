"""One set of economics per data set: what a contact costs, what an outcome is worth, over which
horizon, and the budget, read from the data set's defaults and the refresh's parameters (the
``--config`` file or the flags), and used by every notebook and table that decides a contact
(03's threshold, 07's policy, 06's targeting and the table's recommended arms).

Every number says its unit and its source: ``parameter`` (given for this run), ``data set``
(this module's default for a shipped data set: an assumption, labelled) or ``measured`` (a
randomised campaign measured it: 07 replaces the value of an outcome by the lift in spend per
unit of it). The value a retained user saves is each user's own CLV over ``horizon_months``
(03, 06), never one number for everyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .datasets import currency as currency_of

__all__ = ["Economics", "economics", "DEFAULTS"]

#: The shipped data sets' economics. None of these is measured: a contact's cost and the share of
#: churners it keeps are assumptions a user replaces with their own (``contact_cost: 0.25`` in
#: the refresh's config); a randomised campaign measures what a contact changes (07).
DEFAULTS = {
    # a mailed offer to a CD buyer; the cut-off's retention campaign spends up to $5,000
    "cdnow": {"contact_cost": 5.0, "budget": 5000.0, "budget_share": None, "success_rate": 0.3},
    "cdnow_sample": {"contact_cost": 5.0, "budget": 5000.0, "budget_share": None, "success_rate": 0.3},
    # a call or a discount offer to a telecom customer
    "telco": {"contact_cost": 5.0, "budget": 5000.0, "budget_share": None, "success_rate": 0.3},
    # an e-mail: production and list costs, a few cents to a few dimes; at most 30% of the list
    "hillstrom": {"contact_cost": 0.1, "budget": None, "budget_share": 0.3, "success_rate": None},
}
#: a data set of your own: every number an assumption until you give it
GENERIC = {"contact_cost": 1.0, "budget": None, "budget_share": 0.3, "success_rate": 0.3}
#: the horizon a retained user's value is counted over (the CLV horizon of the table)
HORIZON_MONTHS = 12


@dataclass(frozen=True)
class Economics:
    """What decides whether a contact pays, in one place.

    ``contact_cost``: per contact, a number (every arm and channel) or ``{arm or channel: cost}``;
    ``budget``: money per campaign (None: no money limit); ``budget_share``: at most this share of
    the users per campaign (None: no limit); ``horizon_months``: the window a retained user's value
    (CLV) counts over; ``success_rate``: the share of contacted churners a contact keeps, ASSUMED,
    used only where no campaign measured what a contact does; ``value_per_outcome``: what one unit
    of an outcome is worth (``{"visit": 9.4}``), given, else measured by 07 from a campaign;
    ``persistent_control``: the share of users kept out of every campaign (a standing control
    group, the same users each time: ``experiments.planning``); ``sources``: where each number
    came from.
    """

    dataset: str
    currency: str
    contact_cost: float | dict = 0.0
    budget: float | None = None
    budget_share: float | None = None
    horizon_months: int = HORIZON_MONTHS
    success_rate: float | None = None
    value_per_outcome: dict = field(default_factory=dict)
    persistent_control: float = 0.0
    sources: dict = field(default_factory=dict)

    def cost(self, arm) -> float:
        """The cost of one contact with ``arm`` (or through a channel of that name)."""
        if isinstance(self.contact_cost, dict):
            if str(arm) not in self.contact_cost:
                raise ValueError(
                    f"contact_cost names {sorted(self.contact_cost)} but not {arm!r}: give the cost of every arm "
                    "(contact_cost: {arm: cost, ...}) or one number for all"
                )
            return float(self.contact_cost[str(arm)])
        return float(self.contact_cost)

    def costs(self, arms) -> dict:
        """``{arm: cost}`` for the treatment ``arms``."""
        return {a: self.cost(a) for a in arms}

    def share_for(self, n_users: int, arms=()) -> float | None:
        """The largest share of ``n_users`` a campaign may contact: ``budget_share``, or what the
        money ``budget`` pays for at the dearest arm's cost, whichever is smaller (None: no limit)."""
        shares = [] if self.budget_share is None else [float(self.budget_share)]
        if self.budget is not None and n_users:
            if isinstance(self.contact_cost, dict):
                prices = [self.cost(a) for a in arms] if len(arms) else list(self.contact_cost.values())
            else:
                prices = [float(self.contact_cost)]
            dearest = max(prices)
            if dearest > 0:
                shares.append(min(1.0, self.budget / dearest / n_users))
        return min(shares) if shares else None

    def describe(self) -> dict:
        """What the table's metadata and the notebooks print: each number with its unit and source."""
        money = self.currency
        cost = (
            {str(k): f"{float(v):g} {money} per contact" for k, v in self.contact_cost.items()}
            if isinstance(self.contact_cost, dict)
            else f"{float(self.contact_cost):g} {money} per contact"
        )
        out = {
            "contact_cost": cost,
            "budget": "no money limit" if self.budget is None else f"{self.budget:,.2f} {money} per campaign",
            "budget_share": "no limit" if self.budget_share is None else f"at most {self.budget_share:.0%} of users",
            "value_saved": f"each user's CLV over the next {self.horizon_months} months ({money})",
            "success_rate": (
                "not used (measured effects only)"
                if self.success_rate is None
                else f"{self.success_rate:.0%} of contacted churners kept: ASSUMED where no campaign measured it"
            ),
            "sources": dict(self.sources),
        }
        if self.value_per_outcome:
            out["value_per_outcome"] = {k: f"{float(v):g} {money} per unit" for k, v in self.value_per_outcome.items()}
        if self.persistent_control:
            out["persistent_control"] = f"{self.persistent_control:.1%} of users kept out of every campaign"
        return out

    def text(self) -> str:
        """One line for a notebook."""
        d = self.describe()
        cost = (
            d["contact_cost"]
            if isinstance(d["contact_cost"], str)
            else ", ".join(f"{k}: {v}" for k, v in d["contact_cost"].items())
        )
        src = ", ".join(f"{k} ({v})" for k, v in self.sources.items())
        return (
            f"economics of {self.dataset}: contact {cost}; budget {d['budget']}, {d['budget_share']}; value saved "
            f"{d['value_saved']}; success rate {d['success_rate']}. Sources: {src}"
        )


def _check(name: str, value, *, low=0.0, high=None, allow_none=True):
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if v != v or v < low or (high is not None and v > high):
        bound = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return v


def economics(
    dataset: str,
    path: str = "",
    *,
    contact_cost=None,
    budget=None,
    budget_share=None,
    horizon_months=None,
    success_rate=None,
    value_per_outcome=None,
    persistent_control=None,
    currency: str | None = None,
) -> Economics:
    """The economics of ``dataset``: each argument given (not None) wins over the data set's
    default (:data:`DEFAULTS`; your own file: :data:`GENERIC`), and ``sources`` says which is
    which. A budget or share of ``0`` or less is refused; ``budget=0`` would contact no one."""
    base = GENERIC if path or dataset not in DEFAULTS else DEFAULTS[dataset]
    where = "your file's generic default: an assumption" if base is GENERIC else "data set default: an assumption"
    given = {
        "contact_cost": contact_cost,
        "budget": budget,
        "budget_share": budget_share,
        "success_rate": success_rate,
    }
    values, sources = {}, {}
    for k, v in given.items():
        if v is not None and not (isinstance(v, str) and v == ""):
            values[k], sources[k] = v, "parameter"
        else:
            values[k], sources[k] = base[k], where
    cost = values["contact_cost"]
    if isinstance(cost, dict):
        cost = {str(k): _check(f"contact_cost[{k!r}]", v, allow_none=False) for k, v in cost.items()}
        if not cost:
            raise ValueError("contact_cost is an empty mapping: give {arm: cost} or one number")
    else:
        cost = _check("contact_cost", cost, allow_none=False)
    b = _check("budget", values["budget"])
    if b is not None and b <= 0:
        raise ValueError(f"budget must be positive (or empty: no money limit), got {values['budget']!r}")
    share = _check("budget_share", values["budget_share"], high=1.0)
    if share is not None and share <= 0:
        raise ValueError(f"budget_share must lie in (0, 1] (or be empty: no limit), got {values['budget_share']!r}")
    horizon = HORIZON_MONTHS if horizon_months is None else horizon_months
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon_months must be a whole number of months >= 1, got {horizon_months!r}")
    sources["horizon_months"] = "parameter" if horizon_months is not None else "default: the table's CLV horizon"
    control = _check("persistent_control", persistent_control, high=0.5) or 0.0
    values_out = {
        str(k): _check(f"value_per_outcome[{k!r}]", v, allow_none=False) for k, v in (value_per_outcome or {}).items()
    }
    if values_out:
        sources["value_per_outcome"] = "parameter"
    return Economics(
        dataset=dataset,
        currency=currency_of(dataset, path, currency),
        contact_cost=cost,
        budget=b,
        budget_share=share,
        horizon_months=int(horizon),
        success_rate=_check("success_rate", values["success_rate"], high=1.0),
        value_per_outcome=values_out,
        persistent_control=control,
        sources=sources,
    )
