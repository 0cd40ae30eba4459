"""Tipline: a tipline and case-referral platform for reports of online child sexual
exploitation and abuse."""

__version__ = "0.1.0"
