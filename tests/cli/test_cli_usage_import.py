"""Usage files through ``creditline usage import``: whole files in, or nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HEADER = "event_id,customer_uin,product,list_amount,voucher_amount,occurred_at,kind"


def setup_customer(cli: Any, credit: str = "100.00") -> tuple[int, int]:
    partner = cli("partners", "create", "--name", "Acme", "--kind", "reseller", "--json").json()
    cli("partners", "grant", partner["id"], "1000.00")
    uin = cli("customers", "create", "--partner", partner["id"], "--name", "C", "--json").json()[
        "uin"
    ]
    cli("credit", "allocate", uin, credit, "--operator", "ops")
    return partner["id"], uin


def consumed(cli: Any, uin: int) -> str:
    return str(cli("customers", "show", uin, "--json").json()["consumed"])


def test_csv_import_counts_duplicates_and_raises_alarms(cli: Any, tmp_path: Path) -> None:
    _, uin = setup_customer(cli)
    path = tmp_path / "usage.csv"
    path.write_text(
        f"{HEADER}\n"
        f"e1,{uin},cvm,50.00,10.00,2026-01-01T00:00:00Z,charge\n"
        f"e2,{uin},cos,40.00,0,2026-01-02T00:00:00Z,\n"
        f"e1,{uin},cvm,50.00,10.00,2026-01-01T00:00:00Z,charge\n"
    )
    result = cli("usage", "import", path, "--json").json()
    assert (result["records"], result["accepted"], result["duplicates"]) == (3, 2, 1)
    # 40 + 40 = 80 of 100 credit: the 75 % threshold.
    assert [(a["customer_uin"], a["threshold"]) for a in result["alarms"]] == [(uin, 75)]
    assert consumed(cli, uin) == "80.00"

    again = cli("usage", "import", path, "--json").json()
    assert (again["accepted"], again["duplicates"], again["alarms"]) == (0, 3, [])
    assert consumed(cli, uin) == "80.00"
    assert cli("verify", "--json").json()["ok"] is True


def test_csv_without_kind_column_and_refunds(cli: Any, tmp_path: Path) -> None:
    _, uin = setup_customer(cli)
    path = tmp_path / "usage.csv"
    path.write_text(
        "event_id,customer_uin,product,list_amount,voucher_amount,occurred_at\r\n"
        f"a,{uin},cdn,30.00,0,2026-02-01T10:00:00+08:00\r\n"
        "\r\n"
    )
    assert cli("usage", "import", path, "--json").json()["accepted"] == 1
    refund = tmp_path / "refund.jsonl"
    refund.write_text(
        json.dumps(
            {
                "event_id": "r",
                "customer_uin": uin,
                "product": "cdn",
                "list_amount": "10.00",
                "voucher_amount": "0",
                "occurred_at": "2026-02-02T00:00:00Z",
                "kind": "refund",
            }
        )
        + "\n"
    )
    assert cli("usage", "import", refund, "--json").json()["accepted"] == 1
    assert consumed(cli, uin) == "20.00"


def test_jsonl_import(cli: Any, tmp_path: Path) -> None:
    _, uin = setup_customer(cli)
    path = tmp_path / "feed.jsonl"
    rows = [
        {
            "event_id": f"j{i}",
            "customer_uin": uin,
            "product": "tencentdb",
            "list_amount": "30.00",
            "voucher_amount": "0.00",
            "occurred_at": "2026-03-01T00:00:00Z",
        }
        for i in range(4)
    ]
    path.write_text("\n".join(json.dumps(r) for r in [*rows, rows[0]]) + "\n\n")
    result = cli("usage", "import", path, "--json").json()
    assert (result["accepted"], result["duplicates"]) == (4, 1)
    assert [a["threshold"] for a in result["alarms"]] == [100]
    assert consumed(cli, uin) == "120.00"


def test_format_option_overrides_extension(cli: Any, tmp_path: Path) -> None:
    _, uin = setup_customer(cli)
    path = tmp_path / "feed.txt"
    path.write_text(f"{HEADER}\nx,{uin},scf,1.00,0,2026-01-01T00:00:00Z,charge\n")
    assert "--format" in cli("usage", "import", path, expect=3).stderr
    assert cli("usage", "import", path, "--format", "csv", "--json").json()["accepted"] == 1


def bad_lines(stderr: str) -> list[str]:
    lines = stderr.strip().splitlines()
    assert lines[0].startswith("error: batch refused: line ")
    return [line.strip() for line in lines[1:]]


def test_malformed_csv_is_refused_naming_every_bad_line(cli: Any, tmp_path: Path) -> None:
    _, uin = setup_customer(cli)
    path = tmp_path / "usage.csv"
    path.write_text(
        f"{HEADER}\n"
        f"ok1,{uin},cvm,1.00,0,2026-01-01T00:00:00Z,charge\n"  # 2: fine
        f"bad3,{uin},cvm,1.00,0,2026-01-01T00:00:00Z\n"  # 3: a column short
        f"bad4,{uin},cvm,1.005,0,2026-01-01T00:00:00Z,charge\n"  # 4: three decimals
        f"bad5,{uin},cvm,NaN,0,2026-01-01T00:00:00Z,charge\n"  # 5: NaN
        f"bad6,{uin},cvm,1.00,2.00,2026-01-01T00:00:00Z,charge\n"  # 6: voucher above list
        f"bad7,999,cvm,1.00,0,2026-01-01T00:00:00Z,charge\n"  # 7: unknown customer
        f"bad8,{uin},cvm,1.00,0,yesterday,charge\n"  # 8: not a time
        f"bad9,{uin},cvm,1.00,0,2026-01-01T00:00:00Z,gift\n"  # 9: unknown kind
        f"ok10,{uin},cvm,1.00,0,2026-01-01T00:00:00Z,charge,extra\n"  # 10: a column long
    )
    ran = cli("usage", "import", path, expect=3)
    assert ran.stdout == ""
    named = bad_lines(ran.stderr)
    assert [line.split(":")[0].split(" (")[0] for line in named] == [
        f"line {n}" for n in range(3, 11)
    ]
    # With --json, the same refusal is one JSON error object naming every bad line.
    as_json = cli("usage", "import", path, "--json", expect=3)
    assert as_json.stderr == ""
    error = as_json.json()["error"]
    assert error["code"] == "invalid_batch"
    assert [d["line"] for d in error["details"]] == list(range(3, 11))
    assert "no customer 999" in named[4]
    assert "more than two decimal" in named[1]
    assert consumed(cli, uin) == "0.00"
    # Nothing of the file went in, not even its good lines.
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(f"{HEADER}\nok1,{uin},cvm,1.00,0,2026-01-01T00:00:00Z,charge\n")
    assert cli("usage", "import", fixed, "--json").json()["accepted"] == 1


def test_bad_header_is_line_one(cli: Any, tmp_path: Path) -> None:
    _, uin = setup_customer(cli)
    path = tmp_path / "usage.csv"
    path.write_text(
        "event_id,customer_uin,product,list_amount,occurred_at,colour\n"
        f"e,{uin},cvm,1.00,2026-01-01T00:00:00Z,red\n"
        f"f,{uin},cvm\n"
    )
    named = bad_lines(cli("usage", "import", path, expect=3).stderr)
    assert named[0].startswith("line 1:")
    assert "missing column voucher_amount" in named[0]
    assert "unknown column colour" in named[0]
    assert named[1].startswith("line 3:")
    assert len(named) == 2
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "line 1" in cli("usage", "import", empty, expect=3).stderr


def test_bad_jsonl_is_refused_naming_every_bad_line(cli: Any, tmp_path: Path) -> None:
    _, uin = setup_customer(cli)
    good = {
        "event_id": "g",
        "customer_uin": uin,
        "product": "cvm",
        "list_amount": "1.00",
        "voucher_amount": "0",
        "occurred_at": "2026-01-01T00:00:00Z",
    }
    path = tmp_path / "feed.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(good),  # 1
                "{not json",  # 2
                "[1, 2]",  # 3
                json.dumps({**good, "event_id": "x", "surprise": 1}),  # 4
                json.dumps({**good, "event_id": "y", "list_amount": 0.1 + 0.2}),  # 5
                json.dumps({k: v for k, v in good.items() if k != "product"}),  # 6
            ]
        )
        + "\n"
    )
    named = bad_lines(cli("usage", "import", path, expect=3).stderr)
    assert [line.split(":")[0].split(" (")[0] for line in named] == [
        f"line {n}" for n in range(2, 7)
    ]
    assert consumed(cli, uin) == "0.00"


def test_large_file_goes_in_batches_in_one_transaction(
    cli: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    from creditline.ledger import usage

    # Small batches, so a short file crosses several of them.
    monkeypatch.setattr(usage, "MAX_BATCH", 3)
    _, uin = setup_customer(cli, credit="1000.00")
    lines = [HEADER] + [f"b{i % 8},{uin},cos,1.00,0,2026-01-01T00:00:00Z,charge" for i in range(11)]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    result = cli("usage", "import", path, "--json").json()
    assert (result["records"], result["accepted"], result["duplicates"]) == (11, 8, 3)
    assert consumed(cli, uin) == "8.00"

    # A bad line in the last batch refuses the good batches before it too.
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "\n".join(
            [HEADER]
            + [f"c{i},{uin},cos,1.00,0,2026-01-01T00:00:00Z,charge" for i in range(7)]
            + [f"c7,{uin},cos,-1.00,0,2026-01-01T00:00:00Z,charge"]
        )
        + "\n"
    )
    named = bad_lines(cli("usage", "import", bad, expect=3).stderr)
    assert [line.split(" (")[0] for line in named] == ["line 9"]
    assert consumed(cli, uin) == "8.00"


def test_times_without_offset_and_json_of_the_wrong_type_are_refused(
    cli: Any, tmp_path: Path
) -> None:
    _, uin = setup_customer(cli)
    csv_path = tmp_path / "usage.csv"
    csv_path.write_text(
        f"{HEADER}\n"
        f"a,{uin},cvm,1.00,0,2026-01-01T00:00:00Z,charge\n"
        f"b,{uin},cvm,1.00,0,2026-01-01T00:00:00,charge\n"  # 3: no UTC offset
        f"c,{uin},cvm,1.00,0,2026-01-01,charge\n"  # 4: a day, no offset
    )
    named = bad_lines(cli("usage", "import", csv_path, expect=3).stderr)
    assert [line.split(":")[0] for line in named] == [
        "line 3 (occurred_at)",
        "line 4 (occurred_at)",
    ]
    assert all("no UTC offset" in line for line in named)

    good = {
        "event_id": "g",
        "customer_uin": uin,
        "product": "cvm",
        "list_amount": "1.00",
        "occurred_at": "2026-01-01T00:00:00+08:00",
    }
    jsonl = tmp_path / "feed.jsonl"
    jsonl.write_text(
        "\n".join(
            json.dumps(record)
            for record in [
                good,  # 1: fine (voucher_amount may be left out)
                {**good, "customer_uin": str(uin)},  # 2
                {**good, "customer_uin": float(uin)},  # 3
                {**good, "occurred_at": 1763632800},  # 4
                {**good, "occurred_at": "2026-01-01T00:00:00"},  # 5
                {**good, "list_amount": 30},  # 6
            ]
        )
        + "\n"
    )
    named = bad_lines(cli("usage", "import", jsonl, expect=3).stderr)
    assert [line.split(":")[0] for line in named] == [
        "line 2 (customer_uin)",
        "line 3 (customer_uin)",
        "line 4 (occurred_at)",
        "line 5 (occurred_at)",
        "line 6 (list_amount)",
    ]
    assert consumed(cli, uin) == "0.00"
    jsonl.write_text(json.dumps(good) + "\n")
    assert cli("usage", "import", jsonl, "--json").json()["accepted"] == 1
    assert consumed(cli, uin) == "1.00"
