"""The command line of every subcommand: a command line that cannot work exits 2 in one line.

Exit status 2 means "bad command line" for every subcommand, as the README says and as argparse
does for its own checks; the charts' podFailurePolicy fails a Job at once on it instead of
retrying pods that can never succeed. No server is needed: each is refused before connecting.
"""

from pathlib import Path

import pytest

from jobworker.constants import ExitCode
from tests.support.processes import one_line_error, run_jobworker

REDIS = {"REDIS_URL": "redis://127.0.0.1:1/0"}  # never reached: the command line is refused first
AMQP = {"AMQP_URL": "amqp://127.0.0.1:1/%2F", "AMQP_USERNAME": "u", "AMQP_PASSWORD": "p"}

USAGE_ERRORS = [
    ("fine", REDIS, ["--queue", "q"], "no command given"),
    ("fine", REDIS, ["--queue", "q", "--"], "no command given"),
    ("fine", REDIS, ["--", "true"], "no queue name given"),
    ("fine", REDIS, ["--queue", "a{b}", "--", "true"], "must not contain braces"),
    ("fine", {"REDIS_URL": "http://x"}, ["--queue", "q", "--", "true"], "bad Redis URL"),
    ("fine", REDIS, ["--queue", "q", "--handler", "justamodule"], "not of the form MODULE:FUNCTION"),
    ("fine", REDIS, ["--queue", "q", "--handler", "jobworker.handlers:noop", "--", "true"], "not both"),
    ("fine", REDIS, ["--queue", "q", "--deliver", "file", "--", "cat"], "needs {item_file}"),
    ("fine", REDIS, ["--queue", "q", "--batch-size", "0", "--", "true"], "--batch-size / BATCH_SIZE"),
    ("coarse", AMQP, ["--queue", "q"], "no command given"),
    ("coarse", AMQP, ["--", "cat"], "no queue name given"),
    ("coarse", AMQP, ["--queue", "amq.q", "--", "cat"], "is reserved"),
    ("coarse", AMQP, ["--queue", "q", "--prefetch", "2", "--", "cat"], "--prefetch above 1 needs --drain"),
    ("coarse", {**AMQP, "AMQP_USERNAME": ""}, ["--queue", "q", "--", "cat"], "no RabbitMQ user given"),
    ("coarse", {**AMQP, "AMQP_URL": "http://x/"}, ["--queue", "q", "--", "cat"], "bad AMQP URL"),
    ("indexed", {}, ["--index", "0"], "no command given"),
    ("indexed", {}, ["--index", "-1", "--", "true"], "--index is negative"),
    ("indexed", {}, ["--index", "0", "--", "rev", "{item}"], "no items file"),
    ("indexed", {}, ["--index", "0", "--write-item", "/nonexistent/x"], "--write-item needs an items file"),
    ("seed", REDIS, ["--queue", "q"], "no items given"),
    (
        "seed",
        REDIS,
        ["--queue", "q", "--file", "items.txt", "a"],
        "either with --file or on the command line",
    ),
    ("seed", REDIS, ["--queue", "q", "--quorum", "a"], "--quorum applies to RabbitMQ queues"),
    ("seed", {**AMQP, **REDIS}, ["--queue", "q", "--redis-url", "redis://other:1", "a"], "not both"),
    ("seed", AMQP, ["--queue", "q", "--no-seal", "a"], "--no-seal applies to Redis queues"),
    ("status", REDIS, [], "no queue name given"),
    ("status", AMQP, ["--queue", "amq.q"], "is reserved"),
    ("seal", REDIS, ["--queue", "x}"], "must not contain braces"),
    ("requeue-failed", REDIS, [], "no queue name given"),
    ("requeue-failed", AMQP, ["--queue", "amq.q"], "is reserved"),
]


@pytest.mark.parametrize(
    ("subcommand", "env", "args", "message"),
    USAGE_ERRORS,
    ids=[f"{case[0]}-{i}" for i, case in enumerate(USAGE_ERRORS)],
)
def test_a_bad_command_line_exits_2_in_one_line(subcommand, env, args, message, tmp_path: Path):
    (tmp_path / "items.txt").write_text("a\n")
    result = run_jobworker([subcommand, *[str(tmp_path / a) if a == "items.txt" else a for a in args]], env)
    line = one_line_error(result)
    assert result.returncode == ExitCode.USAGE, line
    assert message in line


def test_every_subcommand_is_covered():
    from jobworker.cli import build_parser  # noqa: PLC0415

    subparsers = build_parser({})._subparsers._group_actions[0].choices
    assert {case[0] for case in USAGE_ERRORS} == set(subparsers)


@pytest.mark.parametrize(
    "subcommand", ["fine", "coarse", "indexed", "seed", "status", "seal", "requeue-failed"]
)
def test_an_unknown_option_exits_2_in_one_line(subcommand):
    result = run_jobworker([subcommand, "--no-such-option"])
    assert result.returncode == ExitCode.USAGE
    assert "unrecognized arguments: --no-such-option" in one_line_error(result)


# Options that only the command line gives: per-run choices that no pod spec sets.
COMMAND_LINE_ONLY = {"--help", "--index", "--file", "--format", "--no-seal", "--json"}


@pytest.mark.parametrize(
    "subcommand", ["fine", "coarse", "indexed", "seed", "status", "seal", "requeue-failed"]
)
def test_help_names_the_variable_of_every_option(subcommand):
    """Every option can come from the environment, so its help says from which variable."""
    from jobworker.cli import build_parser  # noqa: PLC0415

    subparsers = build_parser({})._subparsers._group_actions[0].choices
    for action in subparsers[subcommand]._actions:
        option = max(action.option_strings, key=len, default=None)
        if option is None or option in COMMAND_LINE_ONLY:
            continue
        assert "(env " in (action.help or "") or "; env " in (action.help or ""), (
            f"{subcommand} {option}: the help names no environment variable"
        )
