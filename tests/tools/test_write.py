"""The render's file writing (tools/render/write.py): the worker-thread writer and the streamed
plan.json write exactly what the one-file-at-a-time code wrote, and fail loudly."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.helpers import evaluate_config, stack_config
from tools.render.write import FileWriter, artifacts, plan, write_all


def test_writer_writes_every_file_in_order_and_makes_its_folders(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        files = FileWriter(pool, pending=2)  # a full queue on the way: the producer waits, nothing is lost
        for i in range(50):
            files.write(tmp_path / f"d{i % 7}" / "sub" / f"f{i}.sh", f"line {i}\n\u00e9\n")
        files.write(tmp_path / "d0" / "sub" / "f0.sh", "last write wins\n")
        files.close()
    assert (tmp_path / "d3" / "sub" / "f10.sh").read_bytes() == "line 10\n\u00e9\n".encode()
    assert (tmp_path / "d0" / "sub" / "f0.sh").read_text() == "last write wins\n"
    assert len(list(tmp_path.rglob("*.sh"))) == 50


def test_a_failed_write_is_raised_at_close_and_never_blocks_the_producer(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where a folder must go")
    done = threading.Event()

    def produce() -> None:
        with ThreadPoolExecutor(max_workers=1) as pool:
            files = FileWriter(pool, pending=1)
            for i in range(20):  # far more than the queue holds, after the first failure
                files.write(tmp_path / "taken" / f"f{i}", "x")
            with pytest.raises(OSError):
                files.close()
        done.set()

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert done.is_set(), "the producer blocked after the writer failed"


def test_streamed_plan_json_is_the_same_bytes_as_one_dump(tmp_path: Path) -> None:
    ev = evaluate_config(stack_config("prod"))
    write_all(ev, tmp_path)
    assert (tmp_path / "plan.json").read_text() == json.dumps(plan(ev), indent=2, sort_keys=True) + "\n"
    # artifacts() on its own (the diff tool's path) writes the same files as write_all.
    written = artifacts(ev, tmp_path / "alone")
    assert written and all(p.read_bytes() == (tmp_path / "artifacts" / p.relative_to(tmp_path / "alone")).read_bytes()
                           for p in written)
