"""Imports of hash lists (plain, CSV, VICS JSON) and exports, on a real database.

Every hash here is random; every name is invented."""

from __future__ import annotations

import codecs
import io
import json
import random
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tipline.audit.models import AuditEntry
from tipline.db import transaction
from tipline.errors import InvalidInput, NotFound
from tipline.matching import banks, exports, imports
from tipline.matching.hashfiles import Target, canonical_vpdq
from tipline.matching.models import BankEntry, BankImport, CategoryScheme, HashKind, JobState
from tipline.matching.vics import JsonStream, VicsReader

RNG = random.Random(20260717)
V2_MEDIA = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/Default/$metadata#Media"
V2_CASES = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Cases"
V1_MEDIA = "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media"


def hexes(bits: int, count: int = 1) -> list[str]:
    return [f"{RNG.getrandbits(bits):0{bits // 4}x}" for _ in range(count)]


def make_bank(sessions: sessionmaker[Session], scheme: CategoryScheme = CategoryScheme.custom,
              default: str | None = None, name: str | None = None) -> uuid.UUID:
    with transaction(sessions) as session:
        return banks.create_bank(session, name=name or f"bank-{uuid.uuid4().hex[:8]}",
                                 category_scheme=scheme, default_category=default, actor="tester").id


def entries(sessions: sessionmaker[Session], bank_id: uuid.UUID) -> set[tuple[Any, ...]]:
    with transaction(sessions) as session:
        return {tuple(row) for row in session.execute(
            select(BankEntry.kind, BankEntry.value, BankEntry.category, BankEntry.label,
                   BankEntry.frames).where(BankEntry.bank_id == bank_id))}


def run(sessions: sessionmaker[Session], bank_id: uuid.UUID, path: Path, **options: Any) -> BankImport:
    return imports.run_import(sessions, bank_id=bank_id, path=path, actor="tester", **options)


def vics_file(path: Path, records: list[dict[str, Any]], *, context: str = V2_MEDIA,
              key: str = "@odata.context", bom: bool = False) -> Path:
    text = json.dumps({key: context, "value": records}, indent=1)
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + text.encode())
    return path


# --- plain lists ------------------------------------------------------------------------


def test_plain_list_infers_md5_and_sha1_and_reports_bad_lines(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    md5, sha1 = hexes(128)[0], hexes(160)[0]
    sha256 = hexes(256)[0]
    path = tmp_path / "list.txt"
    path.write_text(
        "# invented test list\n"          # 1
        f"{md5.upper()}  holiday.jpg\n"   # 2: md5sum's layout, upper case
        "\n"                              # 3
        f"{sha1}\n"                       # 4
        f"{sha256}\n"                     # 5: SHA-256 or PDQ?
        f"{md5[:31]}\n"                   # 6
        f"{'g' * 32}\n"                   # 7
        f"{md5}\t*again.jpg\n")           # 8: the same MD5 again
    record = run(sessions, make_bank(sessions), path)
    assert record.state is JobState.done and record.format == "plain"
    assert (record.lines, record.added, record.duplicates, record.rejected) == (6, 2, 1, 3)
    assert record.rejects == [
        {"line": 5, "error": "64 hexadecimal digits can be SHA-256 or PDQ; say which with "
                             "--kind sha256 or --kind pdq"},
        {"line": 6, "error": f"{md5[:31]!r} is not an MD5 (32 hex digits) or SHA-1 (40) hash"},
        {"line": 7, "error": f"MD5 {'g' * 32!r} has characters that are not hexadecimal digits"},
    ]
    assert entries(sessions, record.bank_id) == {
        (HashKind.md5, md5, None, "holiday.jpg", None), (HashKind.sha1, sha1, None, "", None)}


def test_plain_list_with_kind_takes_64_hex_digits_and_checks_every_line(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    pdqs = hexes(256, 3)
    path = tmp_path / "pdq.txt"
    path.write_text("\n".join([*pdqs, hexes(128)[0]]) + "\n")
    bank = make_bank(sessions, CategoryScheme.industry, default="B1")
    record = run(sessions, bank, path, format="plain", kind=HashKind.pdq)
    assert (record.added, record.rejected) == (3, 1)
    assert record.rejects == [{"line": 4, "error": "PDQ must be 64 hexadecimal digits, this has 32 characters"}]
    assert {e[:3] for e in entries(sessions, bank)} == {(HashKind.pdq, p, "B1") for p in pdqs}


# --- CSV --------------------------------------------------------------------------------


def test_csv_columns_by_name_several_hashes_per_row_and_exact_line_numbers(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    (m1, m2, m3), (s1,), (p1,) = hexes(128, 3), hexes(160), hexes(256)
    path = tmp_path / "known.csv"
    path.write_bytes(codecs.BOM_UTF8 + (
        "MD5,Sha-1,PDQ,Category,Series,Notes\n"           # 1
        f"{m1.upper()},{s1},,a1,Series Heron,x\n"         # 2: two entries
        f"{m2},,{p1},,\"Label, with comma\n"              # 3: a quoted label over two lines
        "second line\",\n"                                # 4
        f"{m3},,,Z9,,\n"                                  # 5: not an industry category
        ",,,A2,nothing here,\n"                           # 6: no hash at all
        "\n"                                              # 7
        f"{m1},{'0' * 39},,A1,,\n").encode())             # 8: one bad value refuses the row
    bank = make_bank(sessions, CategoryScheme.industry, default="B2")
    record = run(sessions, bank, path)
    assert record.format == "csv"
    assert (record.lines, record.added, record.duplicates, record.rejected) == (5, 4, 0, 3)
    assert record.rejects == [
        {"line": 5, "error": "'Z9' is not a category of the industry scheme (use one of A1, A2, B1, B2)."},
        {"line": 6, "error": "no hash on this line"},
        {"line": 8, "error": "SHA-1 must be 40 hexadecimal digits, this has 39 characters"},
    ]
    label = "Label, with comma\nsecond line"
    assert entries(sessions, bank) == {
        (HashKind.md5, m1, "A1", "Series Heron", None), (HashKind.sha1, s1, "A1", "Series Heron", None),
        (HashKind.md5, m2, "B2", label, None), (HashKind.pdq, p1, "B2", label, None)}


def test_icse_semicolon_export_ignores_photodna_and_reads_baseline(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    (m1, m2), (s1, s2) = hexes(128, 2), hexes(160, 2)
    path = tmp_path / "icse_export.txt"
    path.write_text(
        "MD5;SHA1;PhotoDNA;Image ID;Is distributed;Victim identified;Offender identified;"
        "Series name;Number of submissions;File Available;Media Type;Baseline\n"
        f"{m1};{s1};AAAA;101;true;false;false;Kestrel;3;false;Image;true\n"
        f"{m2};{s2};;102;false;false;false;;1;false;Image;false\n")
    notes: list[str] = []
    bank = make_bank(sessions, CategoryScheme.interpol)
    record = run(sessions, bank, path, on_note=notes.append)
    assert record.format == "csv" and record.added == 4 and record.rejected == 0
    assert notes == ["PhotoDNA hashes were ignored: Tipline cannot match them."]
    assert entries(sessions, bank) == {
        (HashKind.md5, m1, "baseline", "Kestrel", None), (HashKind.sha1, s1, "baseline", "Kestrel", None),
        (HashKind.md5, m2, "national", "", None), (HashKind.sha1, s2, "national", "", None)}


def test_csv_vpdq_column_makes_one_canonical_entry(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    frames = hexes(256, 3)
    cell = f"2,90,{frames[2]};0,100,{frames[0].upper()};1,95,{frames[1]}"
    path = tmp_path / "videos.csv"
    path.write_text(f'vpdq,label\n"{cell}",clip\n"0,100,{frames[0]};1,101,{frames[1]}",bad\n')
    bank = make_bank(sessions)
    record = run(sessions, bank, path)
    value, canonical = canonical_vpdq(cell)
    assert canonical == f"0,100,{frames[0]}\n1,95,{frames[1]}\n2,90,{frames[2]}"
    assert entries(sessions, bank) == {(HashKind.vpdq, value, None, "clip", canonical)}
    assert record.rejects == [{"line": 3, "error": "vPDQ frame 1 has quality 101 (0 to 100)"}]


def test_csv_without_a_hash_column_fails_and_adds_nothing(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    headless = tmp_path / "headless.csv"
    headless.write_text(f"{hexes(128)[0]},A1\n")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("name,colour\nsquare,red\n")
    bank = make_bank(sessions)
    first = run(sessions, bank, headless)
    assert first.state is JobState.failed and "no header row" in first.error
    second = run(sessions, bank, wrong)
    assert second.state is JobState.failed
    assert second.error == ("The CSV header names no hash column: expected md5, sha1, sha256, "
                            "pdq or vpdq (or kind and value).")
    assert entries(sessions, bank) == set()


# --- VICS -------------------------------------------------------------------------------


def test_vics_2_hash_set_current_numbering_bom_upper_case_string_booleans(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    m = hexes(128, 5)
    s = hexes(160, 1)
    records = [
        {"MediaID": 1, "Category": 1, "MD5": m[0].upper(), "SHA1": s[0].upper(),
         "IsPrecategorized": "true", "VictimIdentified": "false", "Series": "Heron"},
        {"MediaID": 2, "Category": 0, "MD5": m[1], "IsDistributed": "False"},
        {"MediaID": 3, "Category": None, "MD5": m[2], "Comments": "no category given"},
        {"MediaID": 4, "MD5": m[3]},
        {"MediaID": 5, "Category": "5", "MD5": m[4]},
        {"MediaID": 6, "Category": 7, "MD5": hexes(128)[0]},
        {"MediaID": 7, "Category": 2, "PhotoDNA": "QUJD" * 48},
        {"MediaID": 8, "Category": True, "MD5": hexes(128)[0]},
        {"MediaID": 9, "Category": 3, "MD5": "not-a-hash"},
    ]
    notes: list[str] = []
    bank = make_bank(sessions, CategoryScheme.vics, default="4")
    record = run(sessions, bank, vics_file(tmp_path / "set.json", records, bom=True), on_note=notes.append)
    assert record.format == "vics" and record.state is JobState.done
    assert (record.lines, record.added, record.rejected) == (9, 6, 4)
    assert record.rejects == [
        {"record": 6, "error": "MediaID 6: Category 7 is not a VICS category (0 to 5, or null)"},
        {"record": 7, "error": "MediaID 7: the record has no MD5 or SHA1 (PhotoDNA alone cannot be matched)"},
        {"record": 8, "error": "MediaID 8: Category True is not a VICS category (0 to 5, or null)"},
        {"record": 9, "error": "MediaID 9: MD5 must be 32 hexadecimal digits, this has 10 characters"},
    ]
    assert notes == ["PhotoDNA hashes were ignored: Tipline cannot match them."]
    # A missing, null or "uncategorised" (5) Category takes the bank's default, never 0.
    assert entries(sessions, bank) == {
        (HashKind.md5, m[0], "1", "Heron", None), (HashKind.sha1, s[0], "1", "Heron", None),
        (HashKind.md5, m[1], "0", "", None), (HashKind.md5, m[2], "4", "no category given", None),
        (HashKind.md5, m[3], "4", "", None), (HashKind.md5, m[4], "4", "", None)}


def test_vics_1x_legacy_numbering_swaps_0_and_5(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    m = hexes(128, 4)
    records = [{"MediaID": i + 1, "Category": c, "MD5": m[i]} for i, c in enumerate([0, 5, 1, None])]
    bank = make_bank(sessions, CategoryScheme.vics)
    record = run(sessions, bank, vics_file(tmp_path / "old.json", records, context=V1_MEDIA,
                                           key="odata.metadata"))
    assert record.added == 4
    # Legacy 0 is "uncategorised" (no category), legacy 5 is "non-pertinent" (now 0).
    assert {(e[1], e[2]) for e in entries(sessions, bank)} == {
        (m[0], None), (m[1], "0"), (m[2], "1"), (m[3], None)}


def test_vics_case_form_numbers_records_across_cases(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    m = hexes(128, 3)
    cases = [
        {"CaseID": str(uuid.uuid4()), "CaseNumber": "T-1", "Media": [
            {"MediaID": 1, "Category": 2, "MD5": m[0]}, {"MediaID": 2, "Category": 9, "MD5": m[1]}]},
        {"CaseNumber": "T-2", "SourceApplicationName": "Invented", "Media": [
            {"MediaID": 3, "Category": 3, "MD5": m[2], "MediaFiles": [{"FileName": "a.png"}]}]},
    ]
    bank = make_bank(sessions, CategoryScheme.vics)
    record = run(sessions, bank, vics_file(tmp_path / "cases.json", cases, context=V2_CASES),
                 format="vics")
    assert (record.lines, record.added, record.rejected) == (3, 2, 1)
    assert record.rejects[0]["record"] == 2
    assert {(e[1], e[2]) for e in entries(sessions, bank)} == {(m[0], "2"), (m[2], "3")}


def test_vics_categories_outside_the_us_list_or_a_vics_bank_get_the_default(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    m = hexes(128, 2)
    canada = V2_CASES.replace("/US/", "/VIC_Canada/")
    path = vics_file(tmp_path / "ca.json", [{"Media": [{"MediaID": 1, "Category": 1, "MD5": m[0]}]}],
                     context=canada)
    notes: list[str] = []
    vics_bank = make_bank(sessions, CategoryScheme.vics, default="1")
    run(sessions, vics_bank, path, on_note=notes.append)
    assert {e[2] for e in entries(sessions, vics_bank)} == {"1"}
    assert "VIC_Canada profile are not the US VICS list" in notes[0]
    custom = make_bank(sessions, CategoryScheme.custom)
    run(sessions, custom, path)
    assert {e[2] for e in entries(sessions, custom)} == {"VIC_Canada:1"}
    industry = make_bank(sessions, CategoryScheme.industry, default="A2")
    notes.clear()
    run(sessions, industry, vics_file(tmp_path / "us.json", [{"Category": 1, "MD5": m[1]}]),
        on_note=notes.append)
    assert {e[2] for e in entries(sessions, industry)} == {"A2"}
    assert notes == ["VICS categories have no meaning in the industry scheme; entries got the "
                     "bank's default category instead."]


MD5 = '"MD5": "' + "0123456789abcdef" * 2 + '"'
HEAD = '{"@odata.context": "' + V2_MEDIA + '", "value": ['


@pytest.mark.parametrize(("text", "says"), [
    ('{"name": "shapes", "count": 3}', "not a VICS file"),
    ('{"value": [{' + MD5 + "}]}", "must come before value"),
    ('{"value": [], "@odata.context": "' + V2_MEDIA + '"}', "must come before value"),
    ('[{' + MD5 + "}]", "A VICS file is a JSON object"),
    ('{"@odata.context": "' + V2_MEDIA + '"}', "no value array"),
    (HEAD + "{" + MD5 + "} {}]}", "The JSON is broken at character 163: expected ',' or ']'."),
    (HEAD + "{" + MD5 + ", }]}",
     "The JSON is broken at character 163: Expecting property name enclosed in double quotes."),
    (HEAD + "{" + MD5, "cut off (truncated?)"),
    (HEAD + "{" + MD5 + "},", "cut off (truncated?)"),
])
def test_vics_files_that_are_not_vics_fail_whole(
        sessions: sessionmaker[Session], tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    bank = make_bank(sessions)
    record = run(sessions, bank, path)
    assert record.state is JobState.failed
    assert says in record.error
    assert entries(sessions, bank) == set()


@pytest.mark.parametrize("context", [V2_CASES, V2_MEDIA])
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_json_stream_reads_across_any_chunk_boundary(monkeypatch: pytest.MonkeyPatch,
                                                     chunk: int, context: str) -> None:
    """Cases are walked member by member, Media records decoded whole: both ways agree."""
    document = {"@odata.context": context, "odata.count": 1234567, "value": [
        {"CaseNumber": "é-ü ✓", "Media": [{"MediaID": 12345, "Category": 1, "MD5": "ab" * 16,
                                          "Exifs": [{"PropertyName": "x", "PropertyValue": -1.5e3}]},
                                         {"MediaID": 7, "Category": None, "SHA1": "cd" * 20}]},
        {"Media": []}]}
    raw = codecs.BOM_UTF8 + json.dumps(document, ensure_ascii=False, indent=2).encode()
    monkeypatch.setattr(JsonStream, "CHUNK", chunk)
    reader = VicsReader(io.BytesIO(raw), Target(CategoryScheme.vics))
    items = list(reader)
    assert [(i.number, [(e.kind, e.value, e.category) for e in i.entries]) for i in items] == [
        (1, [(HashKind.md5, "ab" * 16, "1")]), (2, [(HashKind.sha1, "cd" * 20, None)])]
    assert reader.bytes_done == len(raw)
    stream = JsonStream(io.BytesIO(b'{"n": 1234567890, "m": [true, null, "x"]}'))
    assert [(key, stream.value()) for key in stream.members()] == [
        ("n", 1234567890), ("m", [True, None, "x"])]


def test_vics_reader_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "large.json"
    with path.open("w") as out:
        out.write(HEAD)
        for i in range(20_000):
            out.write(("," if i else "") + json.dumps(
                {"MediaID": i, "Category": 1, "MD5": f"{i:032x}", "IsDistributed": "true"}))
        out.write("]}")
    tracemalloc.start()
    try:
        with path.open("rb") as raw:
            count = sum(1 for item in VicsReader(raw, Target(CategoryScheme.vics)) if item.entries)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert path.stat().st_size > 1_500_000
    assert peak < 500_000, f"peak {peak} bytes: the reader must not hold the file"


# --- the runner -------------------------------------------------------------------------


def test_importing_the_same_file_twice_adds_nothing_the_second_time(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("md5,sha256\n" + "".join(f"{m},{s}\n" for m, s in zip(
        hexes(128, 12_000), hexes(256, 12_000), strict=True)))
    bank = make_bank(sessions)
    first = run(sessions, bank, path)
    second = run(sessions, bank, path)
    assert (first.added, first.duplicates) == (24_000, 0)
    assert (second.lines, second.added, second.duplicates, second.rejected) == (12_000, 0, 24_000, 0)
    assert len(entries(sessions, bank)) == 24_000
    other = make_bank(sessions)
    assert run(sessions, other, path).added == 24_000, "the same hash may be in two banks"


def test_a_truncated_vics_file_imports_nothing_and_is_recorded_failed(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    records = [{"MediaID": i, "Category": 1, "MD5": m} for i, m in enumerate(hexes(128, 25_000))]
    whole = vics_file(tmp_path / "whole.json", records).read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(whole[: len(whole) - 500])
    seen: list[tuple[int, int, int]] = []
    bank = make_bank(sessions, CategoryScheme.vics)
    record = run(sessions, bank, cut, progress=lambda *a: seen.append(a))
    assert len(seen) >= 2, "batches were inserted before the file broke"
    assert record.state is JobState.failed
    assert record.error == "The JSON ends too early: the file is cut off (truncated?)."
    assert record.added == 0 and record.lines > 20_000 and record.finished_at is not None
    assert entries(sessions, bank) == set()
    with transaction(sessions) as session:
        stored = banks.get_import(session, record.id)
        assert stored.state is JobState.failed and stored.error == record.error
        actions = session.execute(select(AuditEntry.action)).scalars().all()
        assert "bank.import_failed" in actions and "bank.import" not in actions
    fixed = tmp_path / "fixed.json"
    fixed.write_bytes(whole)
    assert run(sessions, bank, fixed).added == 25_000


def test_an_interrupted_import_rolls_back_and_is_recorded(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    path.write_text("".join(f"{h}\n" for h in hexes(128, 25_000)))
    bank = make_bank(sessions)

    def interrupt(lines: int, done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(sessions, bank, path, progress=interrupt)
    assert entries(sessions, bank) == set()
    with transaction(sessions) as session:
        (record,) = banks.list_imports(session, banks.get_bank(session, bank))
        assert record.state is JobState.failed and record.error == "The import was interrupted."


def test_progress_hooks_and_the_reject_limit(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    lines = hexes(128, 22_000)
    for bad in range(0, 2_200, 2):
        lines[bad] = "x" * 32
    path = tmp_path / "list.txt"
    path.write_text("\n".join(lines) + "\n")
    bank = make_bank(sessions)
    calls: list[tuple[uuid.UUID, uuid.UUID, int]] = []
    seen: list[tuple[int, int, int]] = []

    def broken_hook(*_args: object) -> None:
        raise RuntimeError("a hook that fails does not fail the import")

    imports.on_entries_added.extend([broken_hook, lambda *args: calls.append(args)])
    try:
        record = run(sessions, bank, path, progress=lambda *a: seen.append(a))
        again = run(sessions, bank, path)
    finally:
        del imports.on_entries_added[-2:]
    assert record.state is JobState.done and again.state is JobState.done
    assert (record.added, record.rejected, len(record.rejects)) == (20_900, 1_100, 1_000)
    assert record.rejects[-1]["line"] == 1_999
    with transaction(sessions) as session:
        first = session.execute(select(func.min(BankEntry.id)).where(BankEntry.bank_id == bank)).scalar_one()
    assert calls == [(bank, record.id, first)], "called once, and not for an import that added nothing"
    size = path.stat().st_size
    assert len(seen) >= 3
    assert [s[1] for s in seen] == sorted(s[1] for s in seen)
    assert seen[-1] == (22_000, size, size)


def test_unknown_bank_or_format_is_refused_before_anything_is_recorded(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text(hexes(128)[0])
    with pytest.raises(NotFound):
        run(sessions, uuid.uuid4(), path)
    with pytest.raises(InvalidInput, match="Unknown format 'xml'"):
        run(sessions, make_bank(sessions), path, format="xml")
    with transaction(sessions) as session:
        assert session.execute(select(func.count()).select_from(BankImport)).scalar_one() == 0


# --- export -----------------------------------------------------------------------------


def test_csv_export_round_trips_every_kind(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    frames = ";".join(f"{n},{90 + n},{h}" for n, h in enumerate(hexes(256, 3)))
    source = tmp_path / "source.csv"
    source.write_text("md5,sha1,sha256,pdq,category,label\n" + "".join(
        f"{m},{s},{x},{p},{c},\"label {i}, quoted\"\n" for i, (m, s, x, p, c) in enumerate(zip(
            hexes(128, 50), hexes(160, 50), hexes(256, 50), hexes(256, 50),
            ["Kestrel", "", "Series/Owl"] * 16 + ["", ""], strict=True))))
    original = make_bank(sessions, CategoryScheme.custom, default="unsorted")
    assert run(sessions, original, source).added == 200
    videos = tmp_path / "videos.csv"
    videos.write_text(f'vpdq,category\n"{frames}",clip\n')
    assert run(sessions, original, videos).added == 1
    out = tmp_path / "export.csv"
    with transaction(sessions) as session, out.open("w", newline="") as handle:
        result = exports.export_bank(session, banks.get_bank(session, original), handle, "csv",
                                     actor="tester")
    assert result == exports.ExportResult(201, 0)
    assert out.read_text().startswith("kind,value,category,label,frames\n")
    copy = make_bank(sessions, CategoryScheme.custom)
    back = run(sessions, copy, out)
    assert (back.added, back.rejected) == (201, 0)
    assert entries(sessions, copy) == entries(sessions, original)
    with transaction(sessions) as session:
        assert "bank.export" in session.execute(select(AuditEntry.action)).scalars().all()


def test_vics_export_round_trips_md5_and_sha1(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    records = [{"MediaID": i, "Category": i % 5, "MD5": m, "SHA1": s, "Comments": f"note {i}"}
               for i, (m, s) in enumerate(zip(hexes(128, 30), hexes(160, 30), strict=True))]
    original = make_bank(sessions, CategoryScheme.vics)
    run(sessions, original, vics_file(tmp_path / "in.json", records))
    pdq = tmp_path / "pdq.txt"
    pdq.write_text(hexes(256)[0])
    run(sessions, original, pdq, kind=HashKind.pdq)
    out = tmp_path / "out.json"
    with transaction(sessions) as session, out.open("w") as handle:
        result = exports.export_bank(session, banks.get_bank(session, original), handle, "vics",
                                     actor="tester")
    assert result == exports.ExportResult(60, 1)
    written = json.loads(out.read_text())
    assert written["@odata.context"] == exports.VICS_CONTEXT
    assert {media["Category"] for media in written["value"]} == {0, 1, 2, 3, 4}
    assert all(media.get("MD5", "X").isupper() for media in written["value"])
    copy = make_bank(sessions, CategoryScheme.vics)
    assert run(sessions, copy, out).added == 60
    assert entries(sessions, copy) == {e for e in entries(sessions, original) if e[0] is not HashKind.pdq}
    plain = make_bank(sessions, CategoryScheme.industry)
    with transaction(sessions) as session:
        buffer = io.StringIO()
        exports.export_bank(session, banks.get_bank(session, plain), buffer, "vics", actor="t")
        assert json.loads(buffer.getvalue())["value"] == []
        with pytest.raises(InvalidInput):
            exports.export_bank(session, banks.get_bank(session, plain), buffer, "xml", actor="t")


def test_a_file_of_rejects_still_reports_progress(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    path = tmp_path / "junk.txt"
    path.write_text("not a hash\n" * 12_000)
    seen: list[tuple[int, int, int]] = []
    record = run(sessions, make_bank(sessions), path, progress=lambda *a: seen.append(a))
    assert record.state is JobState.done and record.rejected == 12_000 and record.added == 0
    assert [s[0] for s in seen] == [10_000, 12_000]


def test_a_case_without_a_media_list_is_refused_as_a_record(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    cases = [{"CaseNumber": "T-3", "Media": None}, {"Media": [{"MediaID": 4, "MD5": hexes(128)[0]}]}]
    record = run(sessions, make_bank(sessions),
                 vics_file(tmp_path / "cases.json", cases, context=V2_CASES))
    assert (record.added, record.rejects) == (1, [
        {"record": 1, "error": "the record has no MD5 or SHA1 (PhotoDNA alone cannot be matched)"}])
