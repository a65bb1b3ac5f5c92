"""The render's file writing (tools/render/write.py): the raw writer and the streamed plan.json
write exactly what Python's text files and one json.dumps wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.helpers import evaluate_config, stack_config
from tools.render.write import FileWriter, artifacts, plan, write_all


def test_writer_writes_utf8_text_as_is_and_makes_its_folders(tmp_path: Path) -> None:
    files = FileWriter()
    text = "line\n\u00e9 \u2603\n" * 5000  # larger than one buffer: written whole
    files.write(tmp_path / "a" / "b" / "f.sh", text)
    (tmp_path / "ref.sh").write_text(text, encoding="utf-8")
    assert (tmp_path / "a" / "b" / "f.sh").read_bytes() == (tmp_path / "ref.sh").read_bytes()
    files.write(tmp_path / "a" / "b" / "f.sh", "shorter\n")  # replaced, not overwritten in place
    assert (tmp_path / "a" / "b" / "f.sh").read_text() == "shorter\n"


def test_writer_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where a folder must go")
    with pytest.raises(OSError):
        FileWriter().write(tmp_path / "taken" / "f.sh", "x")


def test_streamed_plan_json_is_the_same_bytes_as_one_dump(tmp_path: Path) -> None:
    ev = evaluate_config(stack_config("prod"))
    write_all(ev, tmp_path)
    assert (tmp_path / "plan.json").read_text() == json.dumps(plan(ev), indent=2, sort_keys=True) + "\n"
    # artifacts() on its own (the diff tool's path) writes the same files as write_all.
    written = artifacts(ev, tmp_path / "alone")
    assert len(written) > 10
    assert all(p.read_bytes() == (tmp_path / "artifacts" / p.relative_to(tmp_path / "alone")).read_bytes() for p in written)
