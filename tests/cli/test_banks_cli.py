"""`tipline banks` as an operator uses it: create, list, import with progress, export,
enable, disable, threshold. Every hash is random; every name is invented."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.conftest import environment_for
from tipline.cli.main import cli
from tipline.settings import Settings

V2_MEDIA = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media"


def tipline(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(cli, ["banks", *args], env=environment_for(settings))


def listed(settings: Settings) -> dict[str, dict[str, Any]]:
    result = tipline(settings, "list", "--json")
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_create_list_enable_disable_and_threshold(settings: Settings) -> None:
    empty = tipline(settings, "list")
    assert empty.exit_code == 0 and "no banks" in empty.output
    created = tipline(settings, "create", "Industry list", "--scheme", "industry", "--source",
                      "Example exchange", "--default-category", "a2", "--threshold", "24")
    assert created.exit_code == 0, created.output
    assert "bank 'Industry list' created" in created.output
    again = tipline(settings, "create", "Industry list", "--scheme", "iwf")
    assert again.exit_code == 1 and "already exists" in again.output
    wrong = tipline(settings, "create", "Other", "--scheme", "iwf", "--default-category", "A1")
    assert wrong.exit_code == 1 and "not a category of the iwf scheme" in wrong.output
    row = listed(settings)["Industry list"]
    assert (row["enabled"], row["scheme"], row["threshold"], row["default_category"]) == \
        (True, "industry", 24, "A2")
    assert tipline(settings, "disable", "Industry list").exit_code == 0
    assert listed(settings)["Industry list"]["enabled"] is False
    table = tipline(settings, "list").output.splitlines()
    assert table[0].split() == ["NAME", "ENABLED", "SCHEME", "THRESHOLD", "ENTRIES", "LAST", "IMPORT"]
    assert table[1].split() == ["Industry", "list", "no", "industry", "24", "-", "-"]
    assert tipline(settings, "enable", "Industry list").exit_code == 0
    threshold = tipline(settings, "set-threshold", "Industry list", "16")
    assert threshold.exit_code == 0 and "PDQ threshold 16" in threshold.output
    assert listed(settings)["Industry list"] | {"last_import": None} == row | {
        "threshold": 16, "last_import": None}
    too_far = tipline(settings, "set-threshold", "Industry list", "99")
    assert too_far.exit_code == 1 and "0 to 32" in too_far.output
    unknown = tipline(settings, "enable", "Nope")
    assert unknown.exit_code == 1 and "No hash bank named 'Nope'" in unknown.output


def test_import_reports_rejected_lines_and_export_round_trips(settings: Settings, tmp_path: Path) -> None:
    rng = random.Random(5)
    md5s = [f"{rng.getrandbits(128):032x}" for _ in range(6)]
    csv_file = tmp_path / "hotline.csv"
    csv_file.write_text("MD5,Category,Label\n" + "".join(f"{m},B,shape {i}\n" for i, m in enumerate(md5s))
                        + "zzz,A,bad hash\n" + f"{md5s[0]},Q,bad category\n")
    assert tipline(settings, "create", "UK", "--scheme", "iwf").exit_code == 0
    result = tipline(settings, "import", "UK", str(csv_file))
    assert result.exit_code == 0, result.output
    assert "hotline.csv (csv): 8 lines read, 6 added, 0 already in the bank, 2 rejected" in result.stdout
    assert "rejected line 8: MD5 must be 32 hexadecimal digits, this has 3 characters" in result.stdout
    assert "rejected line 9: 'Q' is not a category of the iwf scheme (use one of A, B, C)." in result.stdout
    assert "hotline.csv: line 9  100%" in result.stderr
    again = tipline(settings, "import", "UK", str(csv_file), "--format", "csv")
    assert "0 added, 6 already in the bank, 2 rejected" in again.stdout
    exported = tmp_path / "uk.json"
    out = tipline(settings, "export", "UK", "-o", str(exported), "--format", "vics")
    assert out.exit_code == 0 and f"6 entries written to {exported}" in out.output
    assert tipline(settings, "create", "Copy", "--scheme", "iwf", "--default-category", "c").exit_code == 0
    back = tipline(settings, "import", "Copy", str(exported))
    assert back.exit_code == 0, back.output
    assert "uk.json (vics): 6 records read, 6 added" in back.stdout
    banks = listed(settings)
    assert banks["Copy"]["entries"] == {"md5": 6} == banks["UK"]["entries"]
    # VICS has no IWF categories: the copy's entries took its default.
    csv_copy = tmp_path / "copy.csv"
    assert tipline(settings, "export", "Copy", "-o", str(csv_copy)).exit_code == 0
    assert {line.split(",")[2] for line in csv_copy.read_text().splitlines()[1:]} == {"C"}


def test_a_failed_import_exits_non_zero_and_adds_nothing(settings: Settings, tmp_path: Path) -> None:
    rng = random.Random(9)
    records = [{"MediaID": i, "Category": 1, "MD5": f"{rng.getrandbits(128):032X}"} for i in range(50)]
    text = json.dumps({"@odata.context": V2_MEDIA, "value": records})
    cut = tmp_path / "cut.json"
    cut.write_text(text[:-40])
    assert tipline(settings, "create", "VIC", "--scheme", "vics").exit_code == 0
    result = tipline(settings, "import", "VIC", str(cut))
    assert result.exit_code == 1
    assert "import failed, nothing was added: The JSON ends too early" in result.output
    row = listed(settings)["VIC"]
    assert row["entries"] == {} and row["last_import"]["state"] == "failed"
    whole = tmp_path / "whole.json"
    whole.write_text(text)
    ok = tipline(settings, "import", "VIC", str(whole))
    assert ok.exit_code == 0 and "50 records read, 50 added" in ok.stdout
    missing = tipline(settings, "import", "Nope", str(whole))
    assert missing.exit_code == 1 and "No hash bank named 'Nope'" in missing.output


@pytest.mark.slow
def test_a_million_line_csv_through_the_cli(settings: Settings, tmp_path: Path) -> None:
    lines = 1_000_000
    bad = {123_457: "not-a-hash", 876_544: "B7"}  # physical line numbers (the header is 1)
    rng = random.Random(1_000_000)
    path = tmp_path / "million.csv"
    with path.open("w") as out:
        out.write("md5,category,label\n")
        for number in range(2, lines + 2):
            md5 = f"{rng.getrandbits(128):032x}"
            if bad.get(number) == "not-a-hash":
                md5 = "not-a-hash"
            out.write(f"{md5},{'B7' if bad.get(number) == 'B7' else 'A1'},generated {number}\n")
    assert tipline(settings, "create", "Big", "--scheme", "industry").exit_code == 0
    started = time.monotonic()
    result = tipline(settings, "import", "Big", str(path))
    seconds = time.monotonic() - started
    assert result.exit_code == 0, result.output
    print(f"1M-line CSV import: {seconds:.1f} s, {lines / seconds:,.0f} lines/s")
    assert "million.csv (csv): 1,000,000 lines read, 999,998 added, 0 already in the bank, 2 rejected" \
        in result.stdout
    assert "rejected line 123457: MD5 must be 32 hexadecimal digits, this has 10 characters" in result.stdout
    assert "rejected line 876544: 'B7' is not a category of the industry scheme" in result.stdout
    progress = [line for line in result.stderr.splitlines() if line.startswith("million.csv: line ")]
    assert len(progress) >= min(5, int(seconds) - 1), result.stderr
    assert progress[-1].startswith("million.csv: line 1,000,001  100%  ")
    assert all(line.endswith(" lines/s") for line in progress)
    assert listed(settings)["Big"]["entries"] == {"md5": 999_998}
