"""The command line's settings in one table: option, variable, type, range, default and help.

Every option can come from the command line or from its environment variable (the charts use the
variables). Both go through the same parse, so a value is checked the same way wherever it comes
from, and a refused value is one line naming the option and its variable (exit 2, a usage error):
argparse checks `choices` only on the command line, and a number without a range lets through
`inf`, `nan` or 1e300, which hang or crash the worker far from where the value was given.

A Setting says what an option is; `add_setting` makes the argparse option from it. A subcommand
that words the help differently (what "handed back" means, which server is retried) fills the
help's {placeholders}. The table is meant to grow into the whole command line: a new kind of value
is a new Kind, and nothing outside this module needs to know how values are read.
"""

import argparse
import math
from collections.abc import Mapping
from typing import NamedTuple, Protocol

from jobworker.constants import (
    DEFAULT_BATCH_SIZE_COMMAND,
    DEFAULT_BATCH_SIZE_HANDLER,
    DEFAULT_CONNECT_SECONDS,
    DEFAULT_GRACE_SECONDS,
    DEFAULT_IDLE_SECONDS,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PREFETCH,
    DEFAULT_WAIT_SECONDS,
    ENV_BATCH_SIZE,
    ENV_CONNECT_TIMEOUT,
    ENV_CONSUMER_TIMEOUT,
    ENV_DELIVERY,
    ENV_DRAIN,
    ENV_GRACE_SECONDS,
    ENV_HANDLER,
    ENV_IDLE_SECONDS,
    ENV_ITEMS_FORMAT,
    ENV_LEASE_SECONDS,
    ENV_LOG_FORMAT,
    ENV_LOG_LEVEL,
    ENV_MAX_ATTEMPTS,
    ENV_PREFETCH,
    ENV_QUEUE,
    ENV_QUORUM,
    ENV_WAIT_FOR_SEAL,
    ENV_WAIT_SECONDS,
)

DAY = 86400.0


class Kind(Protocol):
    """How the text of an option becomes its value."""

    def parse(self, text: str) -> object:
        """The value; ValueError when the text is not one."""

    def describe(self) -> str:
        """What a good value is, for messages: "an integer from 1 to 65535"."""


class Number(NamedTuple):
    """An int or a finite float within [minimum, maximum] (minimum excluded with `above`)."""

    kind: type
    minimum: float
    maximum: float
    above: bool = False  # the minimum itself is not allowed

    def parse(self, text: str) -> float:
        value = self.kind(text.strip())
        if not math.isfinite(value) or value > self.maximum or value < self.minimum:
            raise ValueError(text)
        if self.above and value == self.minimum:
            raise ValueError(text)
        return value

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        low = f"greater than {_shown(self.minimum)}" if self.above else f"from {_shown(self.minimum)}"
        high = f"and at most {_shown(self.maximum)}" if self.above else f"to {_shown(self.maximum)}"
        return f"{what} {low} {high}"


def _shown(value: float) -> str:
    """1.0 as 1, 2592000.0 as 2592000 (not 2.592e+06), 0.1 as 0.1."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class Choice(NamedTuple):
    """One of a few words; `canonical` maps the text to its spelling in `values` (case, say)."""

    values: tuple[str, ...]
    fold: str = "lower"  # "lower", "upper" or "" (exact)

    def parse(self, text: str) -> str:
        value = text.strip()
        value = value.lower() if self.fold == "lower" else value.upper() if self.fold == "upper" else value
        if value not in self.values:
            raise ValueError(text)
        return value

    def describe(self) -> str:
        return "one of " + ", ".join(self.values)


class Flag(NamedTuple):
    """A yes/no variable (the option itself takes no value): true/false, 1/0, yes/no, on/off."""

    def parse(self, text: str) -> bool:
        value = text.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("", "0", "false", "no", "off"):
            return False
        raise ValueError(text)

    def describe(self) -> str:
        return "true or false (also 1/0, yes/no, on/off)"


class Text(NamedTuple):
    """Any text that is valid UTF-8: names and URLs go to servers and log lines, which need it.

    Bytes that are not UTF-8 reach Python as lone surrogates (from argv and the environment alike);
    they would fail much later, with a traceback, where the text is encoded.
    """

    def parse(self, text: str) -> str:
        text.encode("utf-8")  # UnicodeEncodeError is a ValueError
        return text

    def describe(self) -> str:
        return "valid UTF-8 text"


class Setting(NamedTuple):
    """One option of the command line and the environment variable that can give it instead."""

    option: str  # --lease-seconds
    env: str  # LEASE_SECONDS
    kind: Kind
    default: object  # the value when neither gives one (None: not set)
    help: str  # may hold {placeholders} that each subcommand fills
    metavar: str | None = None
    shown_default: str | None = None  # the default as the help says it, when not just the value

    def parse(self, text: str) -> object:
        """The value of `text` from the command line or the variable; one line when refused."""
        try:
            return self.kind.parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {self.kind.describe()} ({self.option} / {self.env})"
            ) from None

    def from_environment(self, environ: Mapping[str, str]) -> object:
        """The default argparse gets: the variable's text (argparse parses it like a command-line
        value, so that it is checked the same way), or the setting's default; an empty variable
        counts as unset, as a chart's empty value renders."""
        text = environ.get(self.env, "")
        return text if text.strip() else self.default

    def help_text(self, **fields: str) -> str:
        default = self.shown_default
        if default is None and self.default is not None and not isinstance(self.default, bool):
            default = f"{self.default:g}" if isinstance(self.default, float) else str(self.default)
        allowed = f"; {self.kind.describe()}" if isinstance(self.kind, Number) else ""
        tail = f"env {self.env}" + (f", default {default}" if default else "") + allowed
        return f"{self.help.format(**fields)} ({tail})"


def add_setting(
    parser: argparse.ArgumentParser, setting: Setting, environ: Mapping[str, str], **fields: str
) -> None:
    """The argparse option of `setting`, its default read from `environ`."""
    if isinstance(setting.kind, Flag):
        text = environ.get(setting.env, "")
        try:
            default = setting.kind.parse(text)
        except ValueError:
            default = _BadFlag(setting, text)
        parser.add_argument(
            setting.option, action="store_true", default=default, help=setting.help_text(**fields)
        )
        return
    choices = setting.kind.values if isinstance(setting.kind, Choice) else None
    parser.add_argument(
        setting.option,
        metavar=setting.metavar or ("{" + ",".join(choices) + "}" if choices else None),
        default=setting.from_environment(environ),
        type=setting.parse,
        help=setting.help_text(**fields),
    )


class _BadFlag:
    """A flag's variable that reads as neither true nor false: refused after parsing (argparse does
    not parse the default of a flag), unless the option itself was given."""

    def __init__(self, setting: Setting, text: str) -> None:
        self.setting = setting
        self.text = text

    def message(self) -> str:
        return (
            f"{self.text!r} is not {self.setting.kind.describe()} "
            f"({self.setting.option} / {self.setting.env})"
        )


def bad_flags(args: argparse.Namespace) -> list[str]:
    """The messages of the flags whose variable held neither true nor false."""
    return [value.message() for value in vars(args).values() if isinstance(value, _BadFlag)]


SECONDS = "SECONDS"

CONNECT_TIMEOUT = Setting(
    "--connect-timeout",
    ENV_CONNECT_TIMEOUT,
    Number(float, 0, DAY),
    DEFAULT_CONNECT_SECONDS,
    "how long to retry an unreachable or restarting {server} before giving up",
    SECONDS,
)
LEASE_SECONDS = Setting(
    "--lease-seconds",
    ENV_LEASE_SECONDS,
    Number(float, 0.1, DAY),
    DEFAULT_LEASE_SECONDS,
    "a lease not renewed for this long is taken back from a worker presumed dead",
    SECONDS,
)
MAX_ATTEMPTS = Setting(
    "--max-attempts",
    ENV_MAX_ATTEMPTS,
    Number(int, 1, 1000),
    DEFAULT_MAX_ATTEMPTS,
    "runs of an item before it goes to {destination}",
    "N",
)
BATCH_SIZE = Setting(
    "--batch-size",
    ENV_BATCH_SIZE,
    Number(int, 1, 100_000),
    None,
    "items leased at once",
    "N",
    shown_default=f"{DEFAULT_BATCH_SIZE_COMMAND} with a command, {DEFAULT_BATCH_SIZE_HANDLER} with a handler",
)
WAIT_SECONDS = Setting(
    "--wait", ENV_WAIT_SECONDS, Number(float, 0, 30 * DAY), DEFAULT_WAIT_SECONDS, "{meaning}", SECONDS
)
GRACE_SECONDS = Setting(
    "--grace-seconds",
    ENV_GRACE_SECONDS,
    Number(float, 0, DAY),
    DEFAULT_GRACE_SECONDS,
    "on SIGTERM, how long the program may still run before its process group is stopped and "
    "{handed_back} handed back",
    SECONDS,
)
PREFETCH = Setting(
    "--prefetch",
    ENV_PREFETCH,
    Number(int, 1, 65535),  # AMQP's prefetch-count is 16 bits
    DEFAULT_PREFETCH,
    "with --drain: messages held ahead and acknowledged in batches; more is faster for short "
    "items but keeps work from other pods",
    "N",
)
IDLE_SECONDS = Setting(
    "--idle",
    ENV_IDLE_SECONDS,
    Number(float, 0, DAY, above=True),
    DEFAULT_IDLE_SECONDS,
    "with --drain: the queue counts as drained after this long without a message",
    SECONDS,
)
CONSUMER_TIMEOUT = Setting(
    "--consumer-timeout",
    ENV_CONSUMER_TIMEOUT,
    Number(float, 0, 2_147_483, above=True),  # RabbitMQ takes it in ms, as a 32-bit integer
    None,
    "{what}: how long RabbitMQ lets a message stay unacknowledged; set it above the longest item "
    "(the server's consumer_timeout, 30 minutes by default, applies otherwise). Honoured from "
    "3.11.15, on quorum queues only from 4.3, whose classic queues time nothing out; left out, "
    "with a line saying why, where the broker would ignore or refuse it",
    SECONDS,
)
QUEUE = Setting("--queue", ENV_QUEUE, Text(), "", "name of {what}", "NAME")
HANDLER = Setting(
    "--handler",
    ENV_HANDLER,
    Text(),
    None,
    "call this Python function per item instead of a command",
    "MODULE:FUNCTION",
)
DELIVERY = Setting(
    "--deliver",
    ENV_DELIVERY,
    Choice(("auto", "stdin", "env", "arg", "file")),
    "auto",
    "how COMMAND gets the {item}: stdin, env ($WORK_ITEM), arg ({{item}}), file ({{item_file}}); "
    "auto picks by placeholder, else stdin",
)
ITEMS_FORMAT = Setting(
    "--items-format",
    ENV_ITEMS_FORMAT,
    Choice(("auto", "lines", "json")),
    "auto",
    "items file format (auto: JSON when the name ends in .json)",
)
LOG_FORMAT = Setting(
    "--log-format", ENV_LOG_FORMAT, Choice(("text", "json")), "text", "log lines as text or JSON"
)
LOG_LEVEL = Setting(
    "--log-level",
    ENV_LOG_LEVEL,
    Choice(("DEBUG", "INFO", "WARNING", "ERROR"), fold="upper"),
    "INFO",
    "how much to log",
)
WAIT_FOR_SEAL = Setting(
    "--wait-for-seal",
    ENV_WAIT_FOR_SEAL,
    Flag(),
    False,
    "wait for a producer to seal the queue even when none has marked it yet (workers started "
    "before the seeder); without it, a list with no marker is finished when empty, as in the "
    "Kubernetes docs",
)
DRAIN = Setting(
    "--drain",
    ENV_DRAIN,
    Flag(),
    False,
    "take messages until the queue stays empty for --idle seconds, not just one",
)
QUORUM = Setting(
    "--quorum",
    ENV_QUORUM,
    Flag(),
    False,
    "RabbitMQ: declare the queue as a quorum queue (replicated) instead of classic",
)

# Every setting, for the checks and tests that go over all of them.
SETTINGS: tuple[Setting, ...] = (
    CONNECT_TIMEOUT, LEASE_SECONDS, MAX_ATTEMPTS, BATCH_SIZE, WAIT_SECONDS, GRACE_SECONDS, PREFETCH,
    IDLE_SECONDS, CONSUMER_TIMEOUT, QUEUE, HANDLER, DELIVERY, ITEMS_FORMAT, LOG_FORMAT, LOG_LEVEL,
    WAIT_FOR_SEAL, DRAIN, QUORUM,
)  # fmt: skip
