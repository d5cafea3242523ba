"""`jobworker indexed`: the Indexed Job worker, run as a real process with real programs."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.indexed import base64_lines
from tests.support.processes import one_line_error, run_jobworker, start_jobworker

DOCS_ITEMS = ["foo", "bar", "baz", "qux", "xyz"]
DOCS_REVERSED = ["oof", "rab", "zab", "xuq", "zyx"]
PY = sys.executable  # a program surely present, for checking exactly what the command received


def indexed(args: list[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess:
    return run_jobworker(["indexed", *args], env, **kwargs)


def echo_stdin() -> list[str]:
    return [PY, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"]


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    path = tmp_path / "items.txt"
    path.write_text("\n".join(DOCS_ITEMS) + "\n")
    return path


@pytest.fixture
def json_file(tmp_path: Path) -> Path:
    path = tmp_path / "items.json"
    path.write_text(json.dumps(DOCS_ITEMS))
    return path


# --- the Kubernetes docs' example --------------------------------------------------------------
@pytest.mark.parametrize("index", range(len(DOCS_ITEMS)))
def test_docs_example_rev_by_index(lines_file: Path, index: int) -> None:
    result = indexed(["--items-file", str(lines_file), "--", "rev"], {"JOB_COMPLETION_INDEX": str(index)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == DOCS_REVERSED[index].encode()  # stdout is rev's alone; logs go to stderr
    assert f"index {index}" in result.stderr.decode()


@pytest.mark.parametrize("index", range(len(DOCS_ITEMS)))
def test_docs_example_init_container_variant(json_file: Path, tmp_path: Path, index: int) -> None:
    """The worker writes the item to a shared directory; an unmodified `rev` then reads the file."""
    shared = tmp_path / "input"  # stands in for the pod's emptyDir
    shared.mkdir()
    written = indexed(
        ["--items-file", str(json_file), "--write-item", str(shared / "data.txt")],
        {"JOB_COMPLETION_INDEX": str(index)},
    )
    assert written.returncode == 0, written.stderr
    assert written.stdout == b""
    assert (shared / "data.txt").read_bytes() == DOCS_ITEMS[index].encode()
    assert (shared / "data.txt").stat().st_mode & 0o777 == 0o644  # readable by any main container user
    assert sorted(p.name for p in shared.iterdir()) == ["data.txt"]  # no partial file left behind
    main = subprocess.run(["rev", str(shared / "data.txt")], capture_output=True, check=True)
    assert main.stdout == DOCS_REVERSED[index].encode()


def test_write_item_from_environment_and_overwrite(lines_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "item"
    target.write_bytes(b"an older, longer item")
    result = indexed(
        [], {"JOB_COMPLETION_INDEX": "4", "ITEMS_FILE": str(lines_file), "WRITE_ITEM_PATH": str(target)}
    )
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == b"xyz"


# --- jobworker-write-item: the init container of indexed-job's init-container variant -------------
WRITE_ITEM = Path(__file__).resolve().parents[1] / "images" / "jobworker-write-item"


def write_item(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The script as the pod runs it: sh, with only the variables the chart and the Job set."""
    return subprocess.run(["sh", str(WRITE_ITEM)], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                          timeout=30, check=False)  # fmt: skip


@pytest.fixture
def by_index(tmp_path: Path) -> Path:
    """The docs' items as indexed-job renders them for its init container: a base64 line per index."""
    path = tmp_path / "items.b64"
    path.write_text(base64_lines(item.encode() for item in DOCS_ITEMS))
    return path


@pytest.mark.parametrize("index", range(len(DOCS_ITEMS)))
def test_write_item_script_writes_the_docs_item_for_rev(by_index: Path, tmp_path: Path, index: int) -> None:
    shared = tmp_path / "input"
    shared.mkdir()
    env = {"ITEMS_FILE": str(by_index), "WRITE_ITEM_PATH": str(shared / "data.txt")}
    result = write_item({**env, "JOB_COMPLETION_INDEX": str(index)})
    assert result.returncode == 0, result.stderr
    assert f"index {index} (from JOB_COMPLETION_INDEX)" in result.stderr.decode()
    assert (shared / "data.txt").read_bytes() == DOCS_ITEMS[index].encode()
    assert (shared / "data.txt").stat().st_mode & 0o777 == 0o644  # readable by any main container user
    assert sorted(p.name for p in shared.iterdir()) == ["data.txt"]  # no partial file left behind
    main = subprocess.run(["rev", str(shared / "data.txt")], capture_output=True, check=True)
    assert main.stdout == DOCS_REVERSED[index].encode()


@pytest.mark.parametrize("content", ["2", "2\n"])
def test_write_item_script_reads_the_downward_api_file(by_index: Path, tmp_path: Path, content: str) -> None:
    (tmp_path / "index").write_text(content)
    env = {"ITEMS_FILE": str(by_index), "WRITE_ITEM_PATH": str(tmp_path / "item"),
           "INDEX_FILE": str(tmp_path / "index"), "JOB_COMPLETION_INDEX": "0"}  # fmt: skip
    assert write_item(env).returncode == 0
    assert (tmp_path / "item").read_bytes() == b"baz"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"JOB_COMPLETION_INDEX": "5"}, "index 5 (from JOB_COMPLETION_INDEX) is past the end of items file"),
        ({"JOB_COMPLETION_INDEX": "-1"}, "'-1' (from JOB_COMPLETION_INDEX) is not a completion index"),
        ({"JOB_COMPLETION_INDEX": "07"}, "'07' (from JOB_COMPLETION_INDEX) is not a completion index"),
        ({"JOB_COMPLETION_INDEX": ""}, "'' (from JOB_COMPLETION_INDEX) is not a completion index"),
        ({"INDEX_FILE": "/no/such/index"}, "cannot read the index file /no/such/index"),
        ({"ITEMS_FILE": "/no/such/items"}, "cannot read items file /no/such/items"),
        ({"ITEMS_FILE": ""}, "ITEMS_FILE is not set"),
        ({"WRITE_ITEM_PATH": ""}, "WRITE_ITEM_PATH is not set"),
        ({"WRITE_ITEM_PATH": "/"}, "cannot write the item to /: it is a directory"),
        ({"WRITE_ITEM_PATH": "/no/such/dir/item"}, "cannot write the item of index 1 to /no/such/dir/item"),
    ],
)
def test_write_item_script_refuses_in_one_line(
    by_index: Path, tmp_path: Path, change: dict, message: str
) -> None:
    env = {
        "ITEMS_FILE": str(by_index),
        "WRITE_ITEM_PATH": str(tmp_path / "item"),
        "JOB_COMPLETION_INDEX": "1",
    }
    result = write_item({**env, **change})
    assert result.returncode == 1
    line = one_line_error(result)
    assert line.startswith("jobworker-write-item: ")
    assert message in line
    assert not (tmp_path / "item").exists()


# --- where the index comes from ---------------------------------------------------------------
def test_index_from_environment(lines_file: Path) -> None:
    result = indexed(["--items-file", str(lines_file), "--", *echo_stdin()], {"JOB_COMPLETION_INDEX": "1"})
    assert (result.returncode, result.stdout) == (0, b"bar")


@pytest.mark.parametrize("content", ["2", "2\n", " 2 \n"])
def test_index_from_downward_api_file(lines_file: Path, tmp_path: Path, content: str) -> None:
    index_file = tmp_path / "job-completion-index"
    index_file.write_text(content)
    result = indexed(["--index-file", str(index_file), "--items-file", str(lines_file), "--", *echo_stdin()])
    assert (result.returncode, result.stdout) == (0, b"baz")


def test_index_file_from_environment(lines_file: Path, tmp_path: Path) -> None:
    index_file = tmp_path / "index"
    index_file.write_text("3")
    result = indexed(["--items-file", str(lines_file), "--", *echo_stdin()], {"INDEX_FILE": str(index_file)})
    assert (result.returncode, result.stdout) == (0, b"qux")


def test_index_option(lines_file: Path) -> None:
    result = indexed(["--index", "4", "--items-file", str(lines_file), "--", *echo_stdin()])
    assert (result.returncode, result.stdout) == (0, b"xyz")


def test_index_precedence(lines_file: Path, tmp_path: Path) -> None:
    """--index beats the index file, which beats $JOB_COMPLETION_INDEX."""
    index_file = tmp_path / "index"
    index_file.write_text("1")
    env = {"JOB_COMPLETION_INDEX": "0", "INDEX_FILE": str(index_file)}
    command = ["--items-file", str(lines_file), "--", *echo_stdin()]
    assert indexed(command, env).stdout == b"bar"
    assert indexed(["--index", "2", *command], env).stdout == b"baz"
    assert indexed(command, {"JOB_COMPLETION_INDEX": "0"}).stdout == b"foo"


# --- items files --------------------------------------------------------------------------------
def test_json_items_keep_any_string(tmp_path: Path) -> None:
    items = ["two\nlines", "  spaced  ", "ünïcode ✓", 42, "", "last"]
    path = tmp_path / "items.json"
    path.write_text(json.dumps(items))
    expected = [b"two\nlines", b"  spaced  ", "ünïcode ✓".encode(), b"42", b"", b"last"]
    for index, item in enumerate(expected):
        result = indexed(["--index", str(index), "--items-file", str(path), "--", *echo_stdin()])
        assert (result.returncode, result.stdout) == (0, item)


def test_json_numbers_keep_their_text(tmp_path: Path) -> None:
    """As Helm wrote them, which is also what the chart's init container writes for them."""
    path = tmp_path / "items.json"
    path.write_text("[42, -3, 1.5, 1e-7, 0.000001, 1E5, 12345678901234567000]")
    expected = [b"42", b"-3", b"1.5", b"1e-7", b"0.000001", b"1E5", b"12345678901234567000"]
    for index, item in enumerate(expected):
        result = indexed(["--index", str(index), "--items-file", str(path), "--", *echo_stdin()])
        assert (result.returncode, result.stdout) == (0, item)


def test_lines_items_skip_blank_lines_and_carriage_returns(tmp_path: Path) -> None:
    path = tmp_path / "items.txt"
    path.write_bytes(b"first\r\n\nsecond item\r\nthird")
    for index, item in enumerate([b"first", b"second item", b"third"]):
        result = indexed(["--index", str(index), "--items-file", str(path), "--", *echo_stdin()])
        assert (result.returncode, result.stdout) == (0, item)


def test_items_format_overrides_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "items"  # a ConfigMap key without an extension
    path.write_text(json.dumps(["a b", "c\nd"]))
    as_json = indexed(
        ["--index", "1", "--items-file", str(path), "--items-format", "json", "--", *echo_stdin()]
    )
    assert (as_json.returncode, as_json.stdout) == (0, b"c\nd")
    from_env = indexed(
        ["--index", "1", "--items-file", str(path), "--", *echo_stdin()], {"ITEMS_FORMAT": "json"}
    )
    assert from_env.stdout == b"c\nd"
    as_lines = indexed(["--index", "0", "--items-file", str(path), "--", *echo_stdin()])
    assert as_lines.stdout == b'["a b", "c\\nd"]'  # auto: not .json, so one item per line


# --- delivery modes -----------------------------------------------------------------------------
ITEM = "a b  c"  # spaces must survive every mode untouched


@pytest.fixture
def item_file(tmp_path: Path) -> Path:
    path = tmp_path / "items.json"
    path.write_text(json.dumps(["unused", ITEM]))
    return path


@pytest.mark.parametrize(
    ("deliver", "program"),
    [
        ("auto", "import sys; sys.stdout.write(sys.stdin.read())"),
        ("stdin", "import sys; sys.stdout.write(sys.stdin.read())"),
        ("env", "import os; print(os.environ['WORK_ITEM'], end='')"),
        ("arg", "import sys; sys.stdout.write(sys.argv[1])"),
        ("file", "import sys; sys.stdout.write(open(sys.argv[1]).read())"),
    ],
)
def test_delivery_modes(item_file: Path, deliver: str, program: str) -> None:
    extra = {"arg": ["{item}"], "file": ["{item_file}"]}.get(deliver, [])
    args = ["--index", "1", "--items-file", str(item_file), "--deliver", deliver, "--", PY, "-c", program]
    result = indexed([*args, *extra])
    assert (result.returncode, result.stdout.decode()) == (0, ITEM), result.stderr


@pytest.mark.parametrize(
    ("placeholder", "reader"), [("{item}", "sys.argv[1]"), ("{item_file}", "open(sys.argv[1]).read()")]
)
def test_auto_delivery_follows_the_placeholder(item_file: Path, placeholder: str, reader: str) -> None:
    program = f"import sys; sys.stdout.write({reader} + '|' + sys.stdin.read())"
    result = indexed(["--index", "1", "--items-file", str(item_file), "--", PY, "-c", program, placeholder])
    assert (result.returncode, result.stdout.decode()) == (0, ITEM + "|")  # nothing on stdin then


def test_delivery_from_environment(item_file: Path) -> None:
    program = "import os; print(os.environ['WORK_ITEM'], end='')"
    result = indexed(
        ["--index", "1", "--items-file", str(item_file), "--", PY, "-c", program], {"ITEM_DELIVERY": "env"}
    )
    assert (result.returncode, result.stdout.decode()) == (0, ITEM)


def test_item_file_lives_in_tmp_and_is_removed(item_file: Path) -> None:
    program = "import sys; print(sys.argv[1], end='')"
    result = indexed(["--index", "1", "--items-file", str(item_file), "--", PY, "-c", program, "{item_file}"])
    path = Path(result.stdout.decode())
    assert result.returncode == 0
    assert path.is_absolute()
    assert not path.exists()


# --- no items file: the command gets the index ------------------------------------------------------
def test_index_only_gets_placeholder_and_environment() -> None:
    program = "import os, sys; print(sys.argv[1], os.environ['JOB_COMPLETION_INDEX'], sys.stdin.read() == '')"
    result = indexed(
        ["--index", "7", "--", PY, "-c", program, "frame-{index}.png"], {"JOB_COMPLETION_INDEX": "1"}
    )
    assert (result.returncode, result.stdout) == (0, b"frame-7.png 7 True\n")


def test_index_placeholder_with_items(lines_file: Path) -> None:
    program = "import sys; print(sys.argv[1], sys.stdin.read())"
    result = indexed(
        ["--items-file", str(lines_file), "--", PY, "-c", program, "out-{index}"],
        {"JOB_COMPLETION_INDEX": "3"},
    )
    assert (result.returncode, result.stdout) == (0, b"out-3 qux\n")


# --- exit status --------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_exit_status_is_the_commands(lines_file: Path, code: int) -> None:
    program = f"import sys; sys.stderr.write('bad item\\n'); sys.exit({code})"
    result = indexed(["--index", "0", "--items-file", str(lines_file), "--", PY, "-c", program])
    assert result.returncode == code
    assert "bad item" in result.stderr.decode()  # the program's stderr is passed through


def test_killed_command_reports_128_plus_signal() -> None:
    result = indexed(
        ["--index", "0", "--", PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    )
    assert result.returncode == 128 + signal.SIGKILL


def test_sigterm_is_passed_on_to_the_command(tmp_path: Path) -> None:
    """Pod deletion: the worker hands SIGTERM to the program at once and exits with its status."""
    program = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    worker = start_jobworker(["indexed", "--index", "0", "--", PY, "-c", program])
    try:
        assert worker.stdout.readline() == b"ready\n"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 7
    finally:
        worker.kill()
        worker.communicate()


# --- bad inputs: one line, a non-zero status, and the program never runs ---------------------------
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "negative"),
        ("abc", "not a completion index"),
        ("1.5", "not a completion index"),
        ("+3", "not a completion index"),
        ("\u0663", "not a completion index"),  # ARABIC-INDIC DIGIT THREE: int() would accept it
        ("", "empty"),
    ],
)
def test_bad_index_in_environment(lines_file: Path, value: str, message: str) -> None:
    result = indexed(["--items-file", str(lines_file), "--", "rev"], {"JOB_COMPLETION_INDEX": value})
    assert result.returncode == 1
    line = one_line_error(result)
    assert "$JOB_COMPLETION_INDEX" in line
    assert message in line


@pytest.mark.parametrize(
    ("content", "message"), [("-2\n", "negative"), ("two", "not a completion index"), ("", "empty")]
)
def test_bad_index_file(lines_file: Path, tmp_path: Path, content: str, message: str) -> None:
    index_file = tmp_path / "index"
    index_file.write_text(content)
    result = indexed(["--index-file", str(index_file), "--items-file", str(lines_file), "--", "rev"])
    assert result.returncode == 1
    line = one_line_error(result)
    assert f"index file {index_file}" in line
    assert message in line


def test_bad_index_option(lines_file: Path) -> None:
    result = indexed(["--index", "-3", "--items-file", str(lines_file), "--", "rev"])
    assert result.returncode == 2  # a malformed command line
    assert "--index is negative" in one_line_error(result)


def test_missing_index(lines_file: Path) -> None:
    result = indexed(["--items-file", str(lines_file), "--", "rev"])
    assert result.returncode == 1
    assert "no completion index" in one_line_error(result)


def test_unreadable_index_file(lines_file: Path, tmp_path: Path) -> None:
    result = indexed(["--index-file", str(tmp_path / "absent"), "--items-file", str(lines_file), "--", "rev"])
    assert result.returncode == 1
    assert f"cannot read index file {tmp_path / 'absent'}" in one_line_error(result)


@pytest.mark.parametrize("index", [5, 6, 1000])
def test_index_past_the_end(lines_file: Path, index: int) -> None:
    result = indexed(["--index", str(index), "--items-file", str(lines_file), "--", "rev"])
    assert result.returncode == 1
    line = one_line_error(result)
    assert f"index {index}" in line
    assert "past the end" in line
    assert "holds 5 items" in line


def test_empty_items_file(tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    path.write_text("[]")
    result = indexed(["--index", "0", "--items-file", str(path), "--", "rev"])
    assert result.returncode == 1
    assert "holds no items" in one_line_error(result)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"a": 1}', "expected a JSON array"),
        ("[null]", "item 0 is NoneType"),
    ],
)
def test_bad_json_items_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "items.json"
    path.write_text(content)
    result = indexed(["--index", "0", "--items-file", str(path), "--", "rev"])
    assert result.returncode == 1
    assert message in one_line_error(result)


def test_missing_items_file(tmp_path: Path) -> None:
    result = indexed(["--index", "0", "--items-file", str(tmp_path / "absent"), "--", "rev"])
    assert result.returncode == 1
    assert "cannot read items file" in one_line_error(result)


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (["--", "rev", "{item}"], "uses {item} but no items file", 2),
        (["--", "cat", "{item_file}"], "uses {item_file} but no items file", 2),
        (["--deliver", "env", "--", "rev"], "item delivery env needs an items file", 2),
        (["--deliver", "stdin", "--", "rev"], "item delivery stdin needs an items file", 2),
        (["--write-item", "/tmp/never-written"], "--write-item needs an items file", 2),
        ([], "no command given", 2),
        (["--", "no-such-program-here"], "command not found: no-such-program-here", 1),
    ],
)
def test_bad_usage_without_items(args: list[str], message: str, status: int) -> None:
    result = indexed(["--index", "0", *args])
    assert result.returncode == status
    assert message in one_line_error(result)


def test_write_item_and_command_together(lines_file: Path, tmp_path: Path) -> None:
    target = tmp_path / "item"
    result = indexed(
        ["--index", "0", "--items-file", str(lines_file), "--write-item", str(target), "--", "rev"]
    )
    assert result.returncode == 2
    assert "either --write-item or a command" in one_line_error(result)
    assert not target.exists()


@pytest.mark.parametrize("where", ["missing-dir/item", "."])
def test_write_item_to_a_bad_path(lines_file: Path, tmp_path: Path, where: str) -> None:
    result = indexed(["--index", "0", "--items-file", str(lines_file), "--write-item", str(tmp_path / where)])
    assert result.returncode == 1
    assert "cannot write the item to" in one_line_error(result)


def test_bad_items_format_from_environment(lines_file: Path) -> None:
    result = indexed(["--index", "0", "--items-file", str(lines_file), "--", "rev"], {"ITEMS_FORMAT": "xml"})
    assert result.returncode == 2
    assert "'xml' is not one of auto, lines, json" in one_line_error(result)


def test_nul_byte_item_cannot_go_through_env(tmp_path: Path) -> None:
    path = tmp_path / "items.json"
    path.write_text(json.dumps(["a\u0000b"]))
    result = indexed(["--index", "0", "--items-file", str(path), "--deliver", "env", "--", "env"])
    assert result.returncode == 1
    assert result.stdout == b""
    assert "NUL byte" in result.stderr.decode()


def test_help_describes_the_index_sources() -> None:
    result = run_jobworker(["indexed", "--help"])
    assert result.returncode == 0
    text = " ".join(result.stdout.decode().split())
    for needle in (
        "--index N",
        "--index-file PATH",
        "JOB_COMPLETION_INDEX",
        "--write-item PATH",
        "INDEX_FILE",
    ):
        assert needle in text
