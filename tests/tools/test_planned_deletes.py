"""tools/planned_deletes.py: the lost host's planned deletes, and nothing else, from a preview."""

from __future__ import annotations

import io
import json

import pytest

from tools.planned_deletes import Refused, main, planned_deletes

U = "urn:pulumi:ha::hybrid-ai::"


def step(op: str, name: str, type_: str = "command:remote:Command") -> dict[str, str]:
    return {"op": op, "urn": f"{U}{type_}::{name}"}


def test_only_the_lost_hosts_deletes_are_listed_in_the_engines_order() -> None:
    digest = {"steps": [step("delete", "cluster-receipt-ready"), step("update", "cluster-cp-2-join"),
                        step("delete", "receipt", "hybridai:host:ExistingHost"), step("same", "receipt-api-deployment")]}
    assert planned_deletes(digest, "receipt") == [f"{U}command:remote:Command::cluster-receipt-ready", f"{U}hybridai:host:ExistingHost::receipt"]
    assert planned_deletes({}, "receipt") == []


@pytest.mark.parametrize("op", ["replace", "create-replacement", "delete-replaced"])
def test_any_replacement_stops_the_runbook(op: str) -> None:
    with pytest.raises(Refused, match="replaces cluster-k8s; stop"):
        planned_deletes({"steps": [step(op, "cluster-k8s", "pulumi:providers:kubernetes"), step("delete", "receipt")]}, "receipt")


def test_a_delete_of_another_resource_is_refused_naming_it() -> None:
    digest = {"steps": [step("delete", "cluster-receipt-join"), step("delete", "receipts-bucket"), step("delete", "ocr-engine-pdb")]}
    with pytest.raises(Refused, match="also deletes receipts-bucket, ocr-engine-pdb, which are not receipt's"):
        planned_deletes(digest, "receipt")


def test_the_command_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"steps": [step("delete", "mesh-receipt-wg")]})))
    assert main(["receipt"]) == 0 and capsys.readouterr().out == f"{U}command:remote:Command::mesh-receipt-wg\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("not json"))
    assert main(["receipt"]) == 2
    assert main([]) == 2 and "usage:" in capsys.readouterr().err
