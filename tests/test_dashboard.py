"""The dashboard reads exactly what a real run logs: every panel key is checked against the records
of an offline W&B run (its `run-*.wandb` file), and the objects are built without a server."""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import pytest

from robust_transfer import dashboard, keys
from robust_transfer.config import compose, to_container
from robust_transfer.naming import run_info
from robust_transfer.pipeline import run
from tests.conftest import smoke_args

pytest.importorskip("wandb_workspaces")

BLOCK = 32 * 1024
HEADER = 7  # ":W&B", magic 0xBEE1, version


def read_offline_run(path: Path) -> dict:
    """Records of a `.wandb` transaction log (LevelDB log format): the keys W&B would receive."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw = path.read_bytes()
    assert raw[:4] == b":W&B", path
    records, pending, pos = [], b"", HEADER
    while pos + 7 <= len(raw):
        if BLOCK - pos % BLOCK < 7:  # block trailer padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        if pos + 7 + length > len(raw):  # a record still being written
            break
        chunk, pos = raw[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            continue
        pending += chunk
        if kind in (1, 4):  # FULL or LAST
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""

    def names(items) -> set[str]:  # a media or table value is stored as nested fields of its key
        return {i.key or i.nested_key[0] for i in items}

    out = {"history": set(), "summary": set(), "wandb_config": {}, "run": None, "exit": False}
    for r in records:
        kind = r.WhichOneof("record_type")
        if kind == "history":
            out["history"] |= names(r.history.item)
        elif kind == "summary":
            out["summary"] |= names(r.summary.update)
        elif kind == "config":
            out["wandb_config"].update({i.key: json.loads(i.value_json) for i in r.config.update})
        elif kind == "exit":
            out["exit"] = True
        elif kind == "run":
            out["run"] = r.run
            out["wandb_config"].update(
                {i.key: json.loads(i.value_json) for i in r.run.config.update}
            )
    return out


@pytest.fixture(scope="module")
def logged(cache_dir, tmp_path_factory) -> dict:
    """One smoke run with W&B offline and an adversary on both stages (so the adversarial curves
    exist). Three languages and one epoch keep it short: keys differ by language only in suffix."""
    os.environ["WANDB_MODE"] = "offline"
    out = tmp_path_factory.mktemp("dashboard") / "run"
    args = [
        "logger.wandb=true",
        "adversary=fgsm",
        "data.languages=[en,de,ja]",
        "trainer.max_epochs=1",
    ]
    cfg = compose([*smoke_args(cache_dir, out), *args])
    results = run(cfg)
    (wandb_file,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    for _ in range(60):  # the W&B service may still be writing the last records
        records = read_offline_run(wandb_file)
        if records["exit"]:
            break
        time.sleep(0.5)
    return {"results": results, "config": to_container(cfg), **records}


def _layout(logged) -> dashboard.Layout:
    return dashboard.Layout.from_results(logged["results"])


def _check(wanted: list[str], logged: dict) -> None:
    available = logged["history"] | logged["summary"]
    missing = sorted(set(wanted) - available)
    assert not missing, f"panels read keys no run logs: {missing}"


def test_every_workspace_panel_reads_a_logged_key(logged):
    workspace = dashboard.build_workspace("entity", "project", _layout(logged))
    wanted = dashboard.workspace_keys(workspace)
    assert len(wanted) > 100
    _check(wanted, logged)
    # the degradation bars of every perturbation and the embedding_pgd robust accuracy are there
    assert (
        keys.degradation_key("keyboard", "ja") in wanted
        and keys.accuracy_key("embedding_pgd", "ja") in wanted
    )
    assert keys.train_key("intermediate", keys.DELTA_NORM) in wanted
    workspace._to_model()  # serialises offline; `.save()` would need a server


def test_every_report_panel_reads_a_logged_key(logged):
    report = dashboard.build_report("entity", "project", _layout(logged))
    _check(dashboard.report_keys(report), logged)
    assert [b.text for b in report.blocks if type(b).__name__ == "H2"] == [
        s.name for s in dashboard.sections(_layout(logged))
    ]


def test_runs_table_columns_are_logged_config_and_summary_keys(logged):
    columns = dashboard.runs_table_columns(_layout(logged))
    config = [
        c.removeprefix("config:").removesuffix(".value") for c in columns if c.startswith("config:")
    ]
    summary = [c.removeprefix("summary:") for c in columns if c.startswith("summary:")]
    assert {"intermediate.adversary.name", "target.adversary.name"} <= set(config)
    assert set(config) <= set(logged["wandb_config"])
    _check(summary, logged)


def test_layout_from_config_matches_what_the_run_logged(logged):
    assert dashboard.Layout.from_config(logged["config"]) == _layout(logged)


def test_the_run_carries_its_identity(logged):
    info, record = run_info(logged["config"]), logged["run"]
    assert (record.display_name, record.run_group, record.job_type) == (
        info["name"],
        info["group"],
        "adv-both",
    )
    assert list(record.tags) == info["tags"]


def test_cli_dry_run_prints_sections_and_saves_nothing(logged, tmp_path, capsys):
    out = Path(logged["config"]["output_dir"])
    assert (
        dashboard.main(
            ["--entity", "e", "--project", "p", "--report", "--dry-run", "--run-dir", str(out)]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert (
        "Degradation" in printed["sections"] and "Perturbation: char_noise" in printed["sections"]
    )
    with pytest.raises(SystemExit):
        dashboard.main(["--entity", "e", "--project", "p", "--dry-run", "--run-dir", str(tmp_path)])
