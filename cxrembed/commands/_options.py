"""Parsing of comma-separated command-line values (now in :mod:`cxrlabel.commands.options`,
the option vocabulary shared by every ``cxr`` command; re-exported here)."""

from __future__ import annotations

from cxrlabel.commands.options import parse_ints, split_names

__all__ = ["split_names", "parse_ints"]
