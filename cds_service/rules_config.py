"""Typed thresholds of every recommendation, read from the shipped ``rules.toml`` and a site file.

The values live only in the TOML files; these models give them names and types and reject a
misspelt key, so a site override cannot silently do nothing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoneDensityScanRules(_Section):
    dxa_interval_months: int = Field(gt=0)


class RulesConfig(_Section):
    bone_density_scan: BoneDensityScanRules = Field(alias="bone-density-scan")


def merge(base: dict, override: dict) -> dict:
    """Deep-merge a site's partial rules over the shipped ones."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
