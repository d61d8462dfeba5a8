"""Loading and validating labelled files: every bad-data case names the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.data import DataError, detect_format, load_dataset


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


GOOD_CSV = "text,label\nhello there,greet\nhi,greet\nbye now,leave\nsee you,leave\n"


def test_csv_strips_whitespace_and_records_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path, "d.csv", "text,label\n  hello there ,greet\nhi,greet \n\nbye,leave\nsee,leave\n"
    )
    ds = load_dataset(path)
    assert ds.texts == ["hello there", "hi", "bye", "see"]
    assert ds.labels == ["greet", "greet", "leave", "leave"]
    assert ds.lines == [2, 3, 5, 6]
    assert len(ds.sha256) == 64


def test_quoted_multiline_field_keeps_physical_line_numbers(tmp_path: Path) -> None:
    content = 'text,label\n"one\ntwo\nthree",a\nsecond,a\n"x\ny",b\n,b\n'
    with pytest.raises(DataError) as err:
        load_dataset(write(tmp_path, "d.csv", content))
    # The empty text is on physical line 8, after two multi-line fields; without it 'b' has
    # one usable example, reported in the same run.
    assert (8, "empty text in column 'text'") in err.value.problems
    assert f"{tmp_path / 'd.csv'}:8: empty text" in str(err.value)


def test_multiline_rows_start_lines(tmp_path: Path) -> None:
    content = 'text,label\n"one\ntwo",a\nsecond,a\n"x\ny",b\nz,b\n'
    assert load_dataset(write(tmp_path, "d.csv", content)).lines == [2, 4, 5, 7]


def test_tsv_and_custom_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path, "d.tsv", "id\tmsg\tcat\n1\thello, you\tg\n2\thi\tg\n3\tbye\tl\n4\tcya\tl\n"
    )
    ds = load_dataset(path, text_column="msg", label_column="cat")
    assert ds.texts[0] == "hello, you" and ds.labels == ["g", "g", "l", "l"]


def test_jsonl(tmp_path: Path) -> None:
    rows = [{"text": "a b", "label": "x"}, {"text": "c", "label": "x"}, {"text": "d", "label": 7}]
    rows.append({"text": "e", "label": 7})
    path = write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    ds = load_dataset(path)
    assert ds.labels == ["x", "x", "7", "7"] and ds.lines == [1, 2, 3, 4]


def test_format_override(tmp_path: Path) -> None:
    path = write(tmp_path, "data.txt", GOOD_CSV)
    with pytest.raises(DataError, match="--format"):
        load_dataset(path)
    assert len(load_dataset(path, fmt="csv")) == 4
    assert detect_format(Path("x.JSONL")) == "jsonl"


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    [
        ("empty.csv", "", 1, "empty"),
        ("blank.csv", "\n \n", 1, "empty"),
        ("header_only.csv", "text,label\n", None, "no data rows"),
        ("missing.csv", "message,label\nhi,a\n", 1, "missing column(s) 'text'"),
        ("empty_text.csv", "text,label\nhi,a\nyo,a\n   ,b\nx,b\n", 4, "empty text"),
        ("empty_label.csv", "text,label\nhi,a\nyo,a\nhey,\n", 4, "empty label"),
        ("rare.csv", "text,label\nhi,a\nyo,a\nbye,b\n", 4, "label 'b' has 1 example(s)"),
        ("ragged.csv", "text,label\nhi,a\nyo,a,extra\nx,b\ny,b\n", 3, "ragged row: 3 fields"),
        ("short.csv", "text,label\nhi,a\nyo\nx,b\ny,b\n", 3, "ragged row: 1 fields"),
        ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", \n', 2, "not valid JSON"),
        ("nokey.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n', 2, "missing key(s)"),
        ("one_label.csv", "text,label\nhi,a\nyo,a\n", None, "only one label"),
    ],
)
def test_bad_data_names_file_and_line(
    tmp_path: Path, name: str, content: str, line: int | None, message: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(DataError) as err:
        load_dataset(path)
    # Other problems of the same file may come with it (all are reported in one run).
    assert any(at == line and message in text for at, text in err.value.problems)
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    listed = str(err.value).splitlines()
    assert any(line.startswith(where) and message in line for line in listed)


def test_non_utf8_bytes_report_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "latin.csv", b"text,label\nhi,a\nyo,a\ncaf\xe9 au lait,b\nx,b\n")
    with pytest.raises(DataError) as err:
        load_dataset(path)
    assert err.value.problems[0][0] == 4
    assert "not UTF-8" in str(err.value)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", "\ufeff" + GOOD_CSV)
    assert load_dataset(path).texts[0] == "hello there"


def test_all_problems_are_listed(tmp_path: Path) -> None:
    path = write(tmp_path, "many.csv", "text,label\n,a\nyo,a\n ,b\nx,b\nz,c\n")
    with pytest.raises(DataError) as err:
        load_dataset(path)
    # Empty texts on 2 and 4; then a, b and c each have one usable example (3, 5, 6).
    assert [line for line, _ in err.value.problems] == [2, 3, 4, 5, 6]
    path = write(tmp_path, "rare.csv", "text,label\nhi,a\nyo,a\nx,b\nz,c\n")
    with pytest.raises(DataError) as err:
        load_dataset(path)
    assert [line for line, _ in err.value.problems] == [4, 5]


def test_every_kind_of_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    # A ragged row, a malformed quote, an empty label, an empty text and a one-example label.
    content = (
        'text,label\nhi,a\nyo,a,extra\nbye,b\nsee you,b\n"bad"quote,b\nhey,\n  ,b\nlonely,c\nok,a\n'
    )
    with pytest.raises(DataError) as err:
        load_dataset(write(tmp_path, "d.csv", content))
    problems = err.value.problems
    assert [line for line, _ in problems] == [3, 6, 7, 8, 9]
    kinds = [message.split(":")[0].split(" ")[0] for _, message in problems]
    assert kinds == ["ragged", "malformed", "empty", "empty", "label"]
    assert "label 'c' has 1 example(s)" in problems[-1][1]
    assert str(err.value).startswith(f"{tmp_path / 'd.csv'}: 5 problems\n")


def test_jsonl_problems_and_label_counts_come_together(tmp_path: Path) -> None:
    lines = ['{"text": "a", "label": "x"}', "{oops", '{"text": "b"}', '{"text": "c", "label": "y"}']
    path = write(tmp_path, "d.jsonl", "\n".join([*lines, '{"text": "d", "label": "x"}']) + "\n")
    with pytest.raises(DataError) as err:
        load_dataset(path)
    assert [line for line, _ in err.value.problems] == [2, 3, 4]
    assert "label 'y' has 1 example(s)" in err.value.problems[2][1]


def test_long_lists_are_capped_with_a_count(tmp_path: Path) -> None:
    content = "text,label\n" + "".join(f"t{i},\n" for i in range(70)) + "a,x\nb,x\nc,y\nd,y\n"
    with pytest.raises(DataError) as err:
        load_dataset(write(tmp_path, "d.csv", content))
    assert len(err.value.problems) == 70
    message = str(err.value).splitlines()
    assert message[0].endswith(": 70 problems")
    assert len(message) == 1 + 50 + 1
    assert message[-1] == "... and 20 more problem(s) not listed"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        load_dataset(tmp_path / "nope.csv")


def test_conflicting_labels_are_reported_not_fatal(tmp_path: Path) -> None:
    content = "text,label\nReset my password,a\nother,a\nreset  my password,b\nmore,b\nfine,b\n"
    ds = load_dataset(write(tmp_path, "c.csv", content))
    assert len(ds) == 5
    assert len(ds.conflicts) == 1
    assert ds.conflicts[0].labels == ("a", "b")
    assert ds.conflicts[0].lines == (2, 4)
