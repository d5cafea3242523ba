"""A property of the command line (issue 14): whatever values the options and their environment
variables hold, parsing either gives settings the worker can run with, every number finite and in
its range, or exits 2 with one line. Never a traceback, never a value that hangs the worker later.

Hypothesis draws a subcommand, options of it with any text as their values (numbers of every
spelling, inf, nan, huge, negative, words, control characters, lone surrogates as undecodable bytes
become) and the same kinds of values for every variable the worker reads. Parsing runs in this
process: the checks are the ones `jobworker` makes before it connects to anything.
"""

import argparse
import contextlib
import io
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobworker import settings as table
from jobworker.cli import build_parser, parse_args
from jobworker.logs import setup_logging

SUBCOMMANDS = ["fine", "coarse", "indexed", "seed", "status", "seal", "requeue-failed"]
VARIABLES = sorted(
    {setting.env for setting in table.SETTINGS}
    | {"REDIS_URL", "AMQP_URL", "INDEX_FILE", "ITEMS_FILE", "WRITE_ITEM_PATH"}
)
NOT_DRAWN = {"--help", "--version"}  # they print and exit 0 by design

# Text as argv and the environment can hold it: anything but NUL, lone surrogates included (what
# bytes that are not UTF-8 decode to).
ANY_TEXT = st.text(st.characters(codec=None, exclude_characters="\x00"), max_size=30)
NUMBERISH = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats().map(lambda f: f"{f:g}"),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(
        ["nan", "inf", "-inf", "Infinity", "1e300", "1e20", "1e-300", "0", "-0", "0x10", "1_000", " 5 ",
         "65535", "65536", "70000", "86400", "86401", "100000", "100001", "", "  ", "٣", "1e3", "+3"]
    ),
)  # fmt: skip
WORDS = st.sampled_from(
    ["text", "json", "xml", "debug", "INFO", "verbose", "auto", "stdin", "env", "arg", "file", "bogus",
     "lines", "true", "false", "yes", "maybe", "1", "0", "on", "queue", "a{b}", "amq.x", "redis://h:1/0",
     "redis://:pw@h:99999/0", "amqp://u:p@h:1/%2F", "http://x", "-", "--", "--queue"]
)  # fmt: skip
VALUES = st.one_of(NUMBERISH, WORDS, ANY_TEXT)


def _options(subcommand: str) -> list[argparse.Action]:
    parser = build_parser({})._subparsers._group_actions[0].choices[subcommand]
    return [a for a in parser._actions if a.option_strings and not set(a.option_strings) & NOT_DRAWN]


@st.composite
def command_lines(draw: st.DrawFn) -> tuple[list[str], dict[str, str]]:
    subcommand = draw(st.sampled_from(SUBCOMMANDS))
    argv = [subcommand]
    for action in draw(st.lists(st.sampled_from(_options(subcommand)), max_size=6)):
        option = max(action.option_strings, key=len)
        argv += [option] if action.nargs == 0 else [option, draw(VALUES)]
    if draw(st.booleans()):
        argv += ["--", "true"]
    environ = draw(st.dictionaries(st.sampled_from(VARIABLES), VALUES, max_size=6))
    return argv, environ


def _check_values(args: argparse.Namespace) -> None:
    """What parsing let through is what the table allows."""
    for setting in table.SETTINGS:
        value = getattr(args, setting.option.lstrip("-").replace("-", "_"), None)
        if value is None or isinstance(value, bool):
            continue
        if isinstance(setting.kind, table.Number):
            assert math.isfinite(value), (setting.option, value)
            assert setting.kind.minimum <= value <= setting.kind.maximum, (setting.option, value)
        elif isinstance(setting.kind, table.Choice):
            assert value in setting.kind.values, (setting.option, value)
        elif isinstance(setting.kind, table.Text):
            value.encode("utf-8")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command_lines())
def test_any_value_gives_settings_in_range_or_one_line_and_exit_2(case):
    argv, environ = case
    stderr = io.StringIO()
    code = None
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            args = parse_args(argv, environ)
    except SystemExit as exit_:
        code = exit_.code
    if code is not None:
        message = stderr.getvalue()
        assert code == 2, (argv, environ, message)
        assert message.endswith("\n")
        assert message.count("\n") == 1, message  # one line, whatever the values held
        assert "Traceback" not in message
        return
    _check_values(args)
    setup_logging(args.log_format, args.log_level)  # LOG_LEVEL=verbose was a traceback here
