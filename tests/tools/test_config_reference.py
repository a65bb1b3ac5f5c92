"""docs/config.md, the config reference, is generated whole from the schema: every section and
every nested section has its table, every type reads as words, every link lands on a heading.
(That the file equals the generated text: tests/stacks/test_config.py.)"""

from __future__ import annotations

import re

from stacks.config import StackConfig
from tests.support.helpers import PROJECT
from tools.docs import _anchor, _models_in, _type_name, render

TEXT = (PROJECT / "docs" / "config.md").read_text()


def _section_paths(model: type, path: str) -> list[str]:
    paths = []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        key = field.alias or name
        sub = f"{path}.{key}" if path else key
        for nested in _models_in(field.annotation):
            paths += [sub, *_section_paths(nested, sub)]
    return paths


def test_every_section_and_nested_section_has_its_table() -> None:
    for name, field in StackConfig.model_fields.items():
        assert f"# `hybrid-ai:{field.alias or name}`" in TEXT
    expected = _section_paths(StackConfig, "")
    assert "hosts.size" in expected and "backup.objectStorage" in expected
    missing = [p for p in expected if f"\n## `{p}`\n" not in TEXT]
    assert not missing, f"sections without a table in docs/config.md: {missing}"


def test_types_read_as_words_and_links_land_on_headings() -> None:
    assert not re.search(r"ForwardRef|<class|typing\.|Annotated\[", TEXT)
    headings = {_anchor(h) for h in re.findall(r"^#+ `([^`]+)`", TEXT, re.M)}
    links = re.findall(r"\]\(#([^)]+)\)", TEXT)
    assert links and not [a for a in links if a not in headings]


def test_an_unresolved_type_stops_the_generator() -> None:
    import typing

    import pytest

    with pytest.raises(TypeError, match="no words for the type"):
        _type_name(typing.ForwardRef("HostSize | None"))
    assert render() == TEXT
