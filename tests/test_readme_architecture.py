"""The README's Architecture section names exactly the subpackages that exist, and every file
it points to exists."""

from __future__ import annotations

import re

from tests._readme import ROOT

PACKAGES = ("cxrlabel", "cxrembed")


def _section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Architecture\n(.*?)(?=^## )", text, flags=re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Architecture' section"
    return match.group(1)


def _subpackages(package: str) -> set[str]:
    return {p.parent.name for p in (ROOT / package).glob("*/__init__.py")}


def test_every_subpackage_is_named_and_every_named_one_exists() -> None:
    named = re.findall(r"`(cxrlabel|cxrembed)/(\w+)/`", _section())
    for package in PACKAGES:
        listed = {sub for pkg, sub in named if pkg == package}
        found = _subpackages(package)
        assert listed - found == set(), f"named in the README but not in {package}/"
        assert found - listed == set(), f"{package}/ subpackages missing from the README"


def test_every_file_the_section_names_exists() -> None:
    section = _section()
    paths = re.findall(r"`((?:cxrlabel|cxrembed)/[\w/]+\.py)`", section)
    bare = re.findall(r"`(\w+\.py)`", section)  # the flat cxrlabel modules
    assert paths and bare
    missing = [p for p in paths if not (ROOT / p).is_file()]
    missing += [f"cxrlabel/{name}" for name in bare if not (ROOT / "cxrlabel" / name).is_file()]
    assert missing == []
