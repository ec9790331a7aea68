"""The time units of the package: every ``freq`` argument (``"D"``, ``"W"``, ``"M"``) means one
of these, in every layer (features, models, simulation, scoring, plots).

A month is a twelfth of a Julian year (30.44 days), so that twelve months make a year whatever
the calendar; weeks are 7 days.
"""

#: days per period of each ``freq``
UNIT_DAYS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12.0}
#: a period of each ``freq`` in words, plural (axis labels, titles)
UNIT_WORDS = {"D": "days", "W": "weeks", "M": "months"}

#: the time unit of the models' periods (recency, T, windows, horizons) when a caller names
#: none: weeks, the unit of the BTYD literature's CDNOW analyses and of every notebook
FREQ = "W"
#: the time unit of CLV horizons and of cohort tables when a caller names none: months
REPORT_FREQ = "M"
