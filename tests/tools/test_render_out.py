"""`make render OUT=...`/`make check OUT=...`: the render replaces or removes only a previous
render's folder; any other folder is refused and kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tools.test_render import DOC, render_in


@pytest.mark.parametrize("failing", [False, True], ids=["render", "failed render"])
def test_out_that_is_not_a_previous_render_is_refused_and_kept(failing: bool, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("years of work\n")
    text = DOC.replace("    mtu: 1380\n", "    mtu: 13\n") if failing else DOC
    result = render_in(tmp_path, "dev", text, out)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f'render: {out} holds files a render does not write ("thesis.txt"); nothing was removed. '
                                          "Give OUT a new folder or a previous render's"]
    assert (out / "thesis.txt").read_text() == "years of work\n" and sorted(out.iterdir()) == [out / "thesis.txt"]
    (tmp_path / "notes.txt").write_text("keep\n")
    assert "notes.txt is not a folder; nothing was removed" in render_in(tmp_path, "dev", text, tmp_path / "notes.txt").stderr
    assert (tmp_path / "notes.txt").read_text() == "keep\n"
    assert render_in(tmp_path, "dev", DOC, tmp_path / "new").returncode == 0  # a new folder is fine
    assert render_in(tmp_path, "dev", DOC, tmp_path / "new").returncode == 0  # and so is a previous render


def test_the_project_s_own_outputs_in_a_render_folder_are_known() -> None:
    from tools.mirror.manifest import FILE
    from tools.render.__main__ import RENDER_ENTRIES

    assert FILE in RENDER_ENTRIES  # `make mirror` writes beside the render; `make render` replaces both
