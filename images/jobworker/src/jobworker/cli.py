"""The `jobworker` command: one subcommand per job pattern and per queue operation.

Every option can also come from the environment (the name is given in each option's help), which is
how the charts configure the workers; credentials come only from the environment, which the charts
fill from Secrets, so that they never appear in a process list.
"""

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, NoReturn

from jobworker import __version__, settings
from jobworker.constants import (
    DEFAULT_AMQP_URL,
    DEFAULT_BATCH_SIZE_COMMAND,
    DEFAULT_BATCH_SIZE_HANDLER,
    DEFAULT_REDIS_URL,
    ENV_AMQP_URL,
    ENV_INDEX_FILE,
    ENV_ITEMS_FILE,
    ENV_JOB_COMPLETION_INDEX,
    ENV_REDIS_PASSWORD,
    ENV_REDIS_URL,
    ENV_SEED_FILE,
    ENV_WRITE_ITEM,
    PLACEHOLDER_INDEX,
    AmqpNames,
    ExitCode,
)
from jobworker.errors import JobWorkerError, UsageError
from jobworker.handlers import load_handler
from jobworker.items import ITEMS_FORMATS, read_items
from jobworker.logs import one_line, preview, setup_logging
from jobworker.progress import ProgressBar
from jobworker.queues import SeedOptions, SeedResult, WorkQueue
from jobworker.runner import CommandRunner, ItemDelivery, check_command
from jobworker.settings import add_setting
from jobworker.stopping import StopRequest

if TYPE_CHECKING:  # the brokers' client libraries are imported only where a subcommand needs them
    from jobworker.amqpqueue import AmqpQueue
    from jobworker.redisqueue import RedisQueue

log = logging.getLogger("jobworker")

FAILED_SHOWN = 10  # failed items listed by `jobworker status`
DEFAULT_PROGRESS_SECONDS = 5.0  # handler mode logs a progress line this often
ANNOTATION_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"  # a pod annotation


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the usage block buries the message in pod logs."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse quotes some values raw (unrecognized arguments): a newline in one must not
        # make the message two lines.
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def _add_common(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    add_setting(parser, settings.LOG_FORMAT, environ)
    add_setting(parser, settings.LOG_LEVEL, environ)


def _add_queue(parser: argparse.ArgumentParser, environ: Mapping[str, str], what: str) -> None:
    add_setting(parser, settings.QUEUE, environ, what=what)


def _add_connect_timeout(parser: argparse.ArgumentParser, environ: Mapping[str, str], server: str) -> None:
    add_setting(parser, settings.CONNECT_TIMEOUT, environ, server=server)


def _add_deliver(parser: argparse.ArgumentParser, environ: Mapping[str, str], item: str = "item") -> None:
    add_setting(parser, settings.DELIVERY, environ, item=item)


def _add_max_attempts(parser: argparse.ArgumentParser, environ: Mapping[str, str], destination: str) -> None:
    add_setting(parser, settings.MAX_ATTEMPTS, environ, destination=destination)


def _add_wait(parser: argparse.ArgumentParser, environ: Mapping[str, str], meaning: str) -> None:
    add_setting(parser, settings.WAIT_SECONDS, environ, meaning=meaning)


def _add_grace(parser: argparse.ArgumentParser, environ: Mapping[str, str], handed_back: str) -> None:
    add_setting(parser, settings.GRACE_SECONDS, environ, handed_back=handed_back)


def _add_command(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")


def _text(option: str, env: str) -> Callable[[str], str]:
    """A converter for free text (URLs, paths) that refuses what is not valid UTF-8, in one line."""
    return settings.Setting(option, env, settings.Text(), None, "").parse


def _add_redis(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    parser.add_argument(
        "--redis-url",
        default=environ.get(ENV_REDIS_URL) or DEFAULT_REDIS_URL,
        type=_text("--redis-url", ENV_REDIS_URL),
        help=f"redis://[user@]host:port/db (env {ENV_REDIS_URL}; the password comes "
        f"from {ENV_REDIS_PASSWORD})",
    )
    _add_queue(parser, environ, "the work queue, the Redis list holding the items")
    _add_connect_timeout(parser, environ, "server")


def _add_fine(sub: argparse._SubParsersAction, environ: Mapping[str, str]) -> None:
    parser = sub.add_parser(
        "fine",
        help="process items from a Redis list until the queue is finished",
        description="Lease items from the Redis list QUEUE and run COMMAND (or --handler) once per item, "
        "until the queue is finished. Exit status: 0 all done, 1 bad input, lost Redis or a queue "
        "that lost its state, 3 finished with failed items, 4 no work came within --wait, 143 "
        "stopped by SIGTERM.",
    )
    _add_redis(parser, environ)
    add_setting(parser, settings.HANDLER, environ)
    _add_deliver(parser, environ)
    add_setting(parser, settings.LEASE_SECONDS, environ)
    _add_max_attempts(parser, environ, "the failed list")
    add_setting(parser, settings.BATCH_SIZE, environ)
    _add_wait(parser, environ, "on an open (unsealed) queue, give up (exit 4) after this long without work")
    add_setting(parser, settings.WAIT_FOR_SEAL, environ)
    _add_grace(parser, environ, "its items")
    _add_seed_file(parser, environ, "leasing items")
    _add_command(parser)
    parser.set_defaults(run=_run_fine)


def _add_seed(sub: argparse._SubParsersAction, environ: Mapping[str, str]) -> None:
    parser = sub.add_parser(
        "seed",
        help="push items to a queue and seal it",
        description="Push items at the tail of the queue, marking it open meanwhile and sealed at the end "
        "(workers wait for a sealed queue before they exit). Running the same seed again "
        "pushes nothing twice: it resumes an interrupted seed or does nothing.",
    )
    _add_redis(parser, environ)
    _add_amqp_backend(parser, environ)
    add_setting(parser, settings.QUORUM, environ)
    _add_consumer_timeout(parser, environ, "RabbitMQ: the queue argument x-consumer-timeout")
    parser.add_argument(
        "--file",
        metavar="PATH",
        help="read items from this file (- for stdin): one per line, or a JSON array",
    )
    parser.add_argument(
        "--format",
        choices=ITEMS_FORMATS,
        default="auto",
        help="items file format (auto: JSON when the name ends in .json)",
    )
    parser.add_argument(
        "--no-seal",
        dest="seal",
        action="store_false",
        help="leave the queue open for more producers; seal it later with `jobworker seal`",
    )
    parser.add_argument("items", nargs="*", metavar="ITEM", help="items given on the command line")
    parser.set_defaults(run=_run_seed)


def _add_status(sub: argparse._SubParsersAction, environ: Mapping[str, str]) -> None:
    parser = sub.add_parser(
        "status",
        help="print a queue's counts",
        description="Print pending, in flight, done and failed counts, and whether the queue is sealed "
        "(RabbitMQ: ready, consumers and failed; unacked is not reported over AMQP).",
    )
    _add_redis(parser, environ)
    _add_amqp_backend(parser, environ)
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(run=_run_status)


def _add_seal(sub: argparse._SubParsersAction, environ: Mapping[str, str]) -> None:
    parser = sub.add_parser("seal", help="mark the end of input of a queue filled by other means")
    _add_redis(parser, environ)
    parser.set_defaults(run=_run_seal)


def _add_requeue_failed(sub: argparse._SubParsersAction, environ: Mapping[str, str]) -> None:
    parser = sub.add_parser("requeue-failed", help="put failed items back on the queue")
    _add_redis(parser, environ)
    _add_amqp_backend(parser, environ)
    parser.set_defaults(run=_run_requeue_failed)


def _add_amqp_backend(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """--amqp-url on a subcommand that serves both backends: given, it selects RabbitMQ."""
    parser.add_argument(
        "--amqp-url",
        default=environ.get(ENV_AMQP_URL) or None,
        type=_text("--amqp-url", ENV_AMQP_URL),
        help=f"amqp://host:port/vhost: work on this RabbitMQ queue instead of Redis (env {ENV_AMQP_URL}; "
        "the user and password come from AMQP_USERNAME / AMQP_PASSWORD unless the URL has them)",
    )


def _add_consumer_timeout(parser: argparse.ArgumentParser, environ: Mapping[str, str], what: str) -> None:
    add_setting(parser, settings.CONSUMER_TIMEOUT, environ, what=what)


def _add_seed_file(parser: argparse.ArgumentParser, environ: Mapping[str, str], before: str) -> None:
    parser.add_argument(
        "--seed-file",
        metavar="PATH",
        default=environ.get(ENV_SEED_FILE) or None,
        type=_text("--seed-file", ENV_SEED_FILE),
        help=f"before {before}, seed QUEUE with the items of this file (a JSON array, or one per line) "
        "as `jobworker seed --file` does: every pod of a Job can run the same seed, the items go in "
        f"once, and no worker starts before all of them are in (env {ENV_SEED_FILE})",
    )


def _add_coarse(sub: argparse._SubParsersAction, environ: Mapping[str, str]) -> None:
    parser = sub.add_parser(
        "coarse",
        help="take one message from a RabbitMQ queue, run COMMAND on it, acknowledge on success",
        description="Take ONE message from the RabbitMQ queue QUEUE (prefetch 1, manual "
        "acknowledgement), run COMMAND on it and acknowledge it only when COMMAND exits 0. A failed "
        "item goes back to the tail of the queue (exit 5) until its last attempt, which moves it to "
        "QUEUE.failed (exit 0). With --drain, take messages until the queue stays empty. Exit status: "
        "0 done, 1 bad input or lost broker, 3 (--drain) drained with failed items, 4 no message "
        "within --wait, 5 item failed and requeued, 143 stopped by SIGTERM.",
    )
    parser.add_argument(
        "--amqp-url",
        default=environ.get(ENV_AMQP_URL) or DEFAULT_AMQP_URL,
        type=_text("--amqp-url", ENV_AMQP_URL),
        help=f"amqp://host:port/vhost (env {ENV_AMQP_URL}; the user and password come from "
        "AMQP_USERNAME / AMQP_PASSWORD unless the URL has them)",
    )
    _add_queue(parser, environ, "the RabbitMQ queue holding one message per item")
    _add_connect_timeout(parser, environ, "broker")
    _add_deliver(parser, environ, "message body")
    _add_max_attempts(parser, environ, "QUEUE.failed")
    _add_wait(parser, environ, "give up (exit 4) when no message arrives within this long")
    add_setting(parser, settings.DRAIN, environ)
    add_setting(parser, settings.PREFETCH, environ)
    add_setting(parser, settings.IDLE_SECONDS, environ)
    _add_grace(parser, environ, "its message")
    _add_consumer_timeout(parser, environ, "the consumer argument x-consumer-timeout (and with "
                          "--seed-file, the queue argument of a queue the seed declares)")  # fmt: skip
    _add_seed_file(parser, environ, "taking a message")
    add_setting(parser, settings.QUORUM, environ)
    _add_command(parser)
    parser.set_defaults(run=_run_coarse)


def _add_indexed(sub: argparse._SubParsersAction, environ: Mapping[str, str]) -> None:
    parser = sub.add_parser(
        "indexed",
        help="run COMMAND once for this pod's completion index in an Indexed Job",
        description="Read the completion index (--index, else --index-file, else "
        f"${ENV_JOB_COMPLETION_INDEX}), pick the item at that position of --items-file and run "
        "COMMAND once with it; without an items file COMMAND gets the index itself "
        f"({PLACEHOLDER_INDEX}, ${ENV_JOB_COMPLETION_INDEX}). The exit status is COMMAND's. "
        "With --write-item and no COMMAND, write the item to a file instead (init-container use).",
    )
    parser.add_argument(
        "--index",
        metavar="N",
        help=f"the completion index, for runs outside Kubernetes (overrides ${ENV_JOB_COMPLETION_INDEX})",
    )
    parser.add_argument(
        "--index-file",
        metavar="PATH",
        default=environ.get(ENV_INDEX_FILE) or None,
        help="a file holding the index: the downward API volume file of the pod annotation "
        f"{ANNOTATION_COMPLETION_INDEX} (env {ENV_INDEX_FILE})",
    )
    parser.add_argument(
        "--items-file",
        metavar="PATH",
        default=environ.get(ENV_ITEMS_FILE) or None,
        help=f"the items, a JSON array or one per line; index N picks item N (env {ENV_ITEMS_FILE})",
    )
    add_setting(parser, settings.ITEMS_FORMAT, environ)
    _add_deliver(parser, environ)
    parser.add_argument(
        "--write-item",
        metavar="PATH",
        default=environ.get(ENV_WRITE_ITEM) or None,
        help="write the item to PATH (e.g. in an emptyDir shared with the main container) and exit, "
        f"instead of running a command (env {ENV_WRITE_ITEM})",
    )
    _add_command(parser)
    parser.set_defaults(run=_run_indexed)


def build_parser(environ: Mapping[str, str]) -> Parser:
    """The whole command line; defaults are read from `environ`."""
    parser = Parser(prog="jobworker", description="Workers for the Kubernetes batch Job patterns.")
    parser.add_argument("--version", action="version", version=f"jobworker {__version__}")
    sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    for add in (_add_fine, _add_coarse, _add_indexed, _add_seed, _add_status, _add_seal, _add_requeue_failed):
        add(sub, environ)
    for subparser in sub.choices.values():
        _add_common(subparser, environ)
    return parser


# --- the queue: Redis, or RabbitMQ with --amqp-url ------------------------------------------------
def _redis_queue(args: argparse.Namespace, environ: Mapping[str, str]) -> "RedisQueue":
    """Connect and open the queue; imported here so that images without redis-py still start."""
    try:
        from jobworker import redisqueue  # noqa: PLC0415
    except ImportError:
        raise JobWorkerError("this image has no Redis support: install jobworker[redis]") from None
    name = redisqueue.validate_queue_name(args.queue)
    client = redisqueue.connect(args.redis_url, environ.get(ENV_REDIS_PASSWORD), args.connect_timeout)
    queue = redisqueue.RedisQueue(client, name)
    queue.check_type()
    return queue


def _amqp_module() -> ModuleType:
    """The RabbitMQ support, imported here so that images without pika still start."""
    try:
        from jobworker import amqpqueue  # noqa: PLC0415
    except ModuleNotFoundError as error:
        if error.name != "pika":
            raise
        raise JobWorkerError("this image has no RabbitMQ support: install jobworker[amqp]") from None
    return amqpqueue


def _uses_amqp(args: argparse.Namespace, environ: Mapping[str, str]) -> bool:
    """--amqp-url (or AMQP_URL) selects RabbitMQ; RabbitMQ-only options need it."""
    if not args.amqp_url:
        for option, given in (("--quorum", getattr(args, "quorum", False)),
                              ("--consumer-timeout", getattr(args, "consumer_timeout", None))):  # fmt: skip
            if given:
                raise UsageError(f"{option} applies to RabbitMQ queues: give --amqp-url (or {ENV_AMQP_URL})")
        return False
    if args.redis_url != (environ.get(ENV_REDIS_URL) or DEFAULT_REDIS_URL):
        raise UsageError("give either --amqp-url (RabbitMQ) or --redis-url (Redis), not both")
    if getattr(args, "seal", True) is False:
        raise UsageError("--no-seal applies to Redis queues: RabbitMQ queues have no end-of-input marker")
    return True


def _amqp_queue(args: argparse.Namespace, environ: Mapping[str, str], role: str) -> "AmqpQueue":
    amqpqueue = _amqp_module()
    name = amqpqueue.validate_queue_name(args.queue)
    broker = amqpqueue.broker_from(args.amqp_url, environ, args.connect_timeout, f"jobworker {role}")
    return amqpqueue.AmqpQueue(amqpqueue.connect(broker), name, broker)


def _queue_opener(args: argparse.Namespace, environ: Mapping[str, str]) -> Callable[[str], WorkQueue]:
    """The queue of --amqp-url, else of --redis-url, opened by the returned function (its argument
    names the subcommand to RabbitMQ); the options are checked now, before anything else."""
    if _uses_amqp(args, environ):
        return lambda role: _amqp_queue(args, environ, role)
    return lambda _role: _redis_queue(args, environ)


# --- workers --------------------------------------------------------------------------------------
def _command_of(args: argparse.Namespace) -> list[str]:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    return command


def _run_fine(args: argparse.Namespace, environ: Mapping[str, str]) -> ExitCode:
    from jobworker.fine import (  # noqa: PLC0415 - needs redis-py, absent from some images
        CommandProcessor,
        FineSettings,
        FineWorker,
        HandlerProcessor,
    )

    command = _command_of(args)
    if args.handler and command:
        raise UsageError("give either --handler or a command after --, not both")
    stop = StopRequest()
    if args.handler:
        processor = HandlerProcessor(load_handler(args.handler), stop, DEFAULT_PROGRESS_SECONDS)
        batch_size = args.batch_size or DEFAULT_BATCH_SIZE_HANDLER
    else:
        check_command(command)
        runner = CommandRunner(command, args.deliver, stop, args.grace_seconds)
        processor = CommandProcessor(runner, stop, DEFAULT_PROGRESS_SECONDS)
        batch_size = args.batch_size or DEFAULT_BATCH_SIZE_COMMAND
    queue = _redis_queue(args, environ)
    queue.warn_unless_noeviction()
    if args.seed_file:
        # In the worker's own process, as coarse does (see _run_coarse), on the worker's connection.
        _seed_from_file(args, queue)
    settings = FineSettings(
        batch_size=batch_size,
        lease_seconds=args.lease_seconds,
        max_attempts=args.max_attempts,
        wait_seconds=args.wait,
        wait_for_seal=args.wait_for_seal,
        progress_seconds=DEFAULT_PROGRESS_SECONDS,
        grace_seconds=args.grace_seconds,
    )
    stop.install()
    log.info(
        "worker started on queue %r (batch %d, lease %g s, %d attempts)",
        queue.name,
        batch_size,
        args.lease_seconds,
        args.max_attempts,
    )
    return FineWorker(queue, processor, settings, stop).run()


def _run_coarse(args: argparse.Namespace, environ: Mapping[str, str]) -> ExitCode:
    amqpqueue = _amqp_module()
    from jobworker.coarse import CoarseSettings, CoarseWorker  # noqa: PLC0415 - needs pika

    command = _command_of(args)
    check_command(command)
    if args.prefetch > 1 and not args.drain:
        raise UsageError("--prefetch above 1 needs --drain: a one-message worker takes exactly one")

    def runner_for(stop: StopRequest) -> CommandRunner:
        return CommandRunner(command, args.deliver, stop, args.grace_seconds)

    runner_for(StopRequest())  # checks --deliver against the arguments before anything is taken
    if args.quorum and not args.seed_file:
        raise UsageError(f"--quorum applies to the queue a seed declares: give --seed-file ({ENV_SEED_FILE})")
    names = AmqpNames.for_queue(amqpqueue.validate_queue_name(args.queue))
    if args.seed_file:
        # In the worker's own process, not an init container: a pod per item would otherwise pay
        # a second container and Python start for what is, after the first pod, one lookup.
        seed_queue = _amqp_queue(args, environ, "coarse seed")
        try:
            _seed_from_file(args, seed_queue)
        finally:
            seed_queue.close()
    broker = amqpqueue.broker_from(args.amqp_url, environ, args.connect_timeout, "jobworker coarse")
    settings = CoarseSettings(
        max_attempts=args.max_attempts,
        wait_seconds=args.wait,
        drain=args.drain,
        prefetch=args.prefetch if args.drain else 1,
        idle_seconds=args.idle,
        consumer_timeout=args.consumer_timeout,
    )
    stop = StopRequest()
    stop.install()
    return CoarseWorker(broker, names, runner_for, settings, stop).run()


# --- producers and operators: one body for either broker ------------------------------------------
def _read_items_file(path: str, items_format: str) -> list[bytes]:
    items = read_items(path, items_format)
    if not items:
        # Seeding nothing would seal an empty queue: its workers would finish at once, and the
        # next seed, with the real items, would be refused as "sealed".
        source = "stdin" if path == "-" else path
        raise JobWorkerError(f"items file {source} holds no items: nothing seeded, the queue is untouched")
    return items


def _read_seed_items(args: argparse.Namespace) -> list[bytes]:
    if args.file and args.items:
        raise UsageError("give items either with --file or on the command line, not both")
    if args.file:
        return _read_items_file(args.file, args.format)
    if not args.items:
        raise UsageError("no items given: pass them as arguments or with --file")
    return [os.fsencode(item) for item in args.items]


def _seed_options(args: argparse.Namespace) -> SeedOptions:
    return SeedOptions(
        seal=getattr(args, "seal", True),
        quorum=getattr(args, "quorum", False),  # the options of RabbitMQ, which `fine` has not
        consumer_timeout=getattr(args, "consumer_timeout", None),
        lock_seconds=args.connect_timeout,
    )


def _seed_from_file(args: argparse.Namespace, queue: WorkQueue) -> None:
    """A worker's --seed-file: the seed `jobworker seed --file` would make, before it works."""
    result = queue.seed(_read_items_file(args.seed_file, "auto"), _seed_options(args))
    _log_seeded(queue, result)


def _run_seed(args: argparse.Namespace, environ: Mapping[str, str]) -> ExitCode:
    open_queue = _queue_opener(args, environ)
    items = _read_seed_items(args)
    queue = open_queue("seed")
    try:
        bar = ProgressBar(f"seeding {queue.name}")
        result = queue.seed(items, _seed_options(args), on_progress=bar.update)
    finally:
        queue.close()
    _log_seeded(queue, result)
    return ExitCode.OK


def _log_seeded(queue: WorkQueue, result: SeedResult) -> None:
    if result.already_seeded:
        log.info(
            "queue %r already holds these %d items from an earlier seed: nothing %s",
            queue.name,
            result.total,
            queue.seed_verb,
        )
    else:
        resumed = result.total - result.pushed
        log.info(
            "%s %d items to %squeue %r%s",
            queue.seed_verb,
            result.pushed,
            "the new " if result.created else "",
            queue.name,
            f" (resumed: {resumed} were already in)" if resumed else "",
        )
    if result.sealed is not None:
        log.info(
            "queue %r is %s",
            queue.name,
            "sealed" if result.sealed else "open (seal it with `jobworker seal`)",
        )


def _run_status(args: argparse.Namespace, environ: Mapping[str, str]) -> ExitCode:
    queue = _queue_opener(args, environ)("status")
    try:
        status = queue.status()
        failed_items = queue.failed_items(FAILED_SHOWN) if status.failed and not args.json else []
        retrying = queue.retrying(FAILED_SHOWN) if not args.json else []
    finally:
        queue.close()
    if args.json:
        sys.stdout.write(json.dumps({"queue": queue.name, **status.as_dict()}) + "\n")
        return ExitCode.OK
    lines = status.lines(queue.name)
    for item, error in failed_items:
        lines.append(f"    {preview(item)}: {error}")
    if status.failed and status.failed > FAILED_SHOWN:
        lines.append(f"    ... and {status.failed - FAILED_SHOWN} more")
    if retrying:
        lines.append("  retrying (attempts charged so far: last error)")
        lines.extend(f"    {preview(r.item)} ({r.attempts}): {r.error}" for r in retrying)
    sys.stdout.write("\n".join(lines) + "\n")
    return ExitCode.OK


def _run_seal(args: argparse.Namespace, environ: Mapping[str, str]) -> ExitCode:
    queue = _redis_queue(args, environ)
    queue.seal()
    log.info("queue %r is sealed: workers exit once it is empty and nothing is in flight", queue.name)
    return ExitCode.OK


def _run_requeue_failed(args: argparse.Namespace, environ: Mapping[str, str]) -> ExitCode:
    queue = _queue_opener(args, environ)("requeue-failed")
    try:
        moved = queue.requeue_failed()
    finally:
        queue.close()
    log.info("moved %d failed items back to queue %r", moved, queue.name)
    return ExitCode.OK


# --- Indexed Job ---------------------------------------------------------------------------------
def _run_indexed(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from jobworker import indexed  # noqa: PLC0415 - only this subcommand needs it

    command = _command_of(args)
    if args.write_item:
        if command:
            raise UsageError("give either --write-item or a command after --, not both")
        if not args.items_file:
            raise UsageError(f"--write-item needs an items file (--items-file / env {ENV_ITEMS_FILE})")
    else:
        check_command(command)
        indexed.check_delivery(command, args.deliver, has_items=bool(args.items_file))
    index = indexed.resolve_index(args.index, args.index_file, environ)
    item = indexed.select_item(args.items_file, args.items_format, index) if args.items_file else None
    if args.write_item:
        indexed.write_item(item, args.write_item)
        log.info(
            "index %d (from %s): wrote item %r to %s",
            index.value,
            index.source,
            preview(item),
            args.write_item,
        )
        return ExitCode.OK
    return indexed.run_command(command, args.deliver, index, item, args.items_file)


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    """The options of the command line and the environment, every value checked (settings.py):
    a value that cannot work exits 2 with one line naming the option and its variable."""
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    for message in settings.bad_flags(args):
        parser._subparsers._group_actions[0].choices[args.subcommand].error(message)
    if hasattr(args, "deliver"):
        args.deliver = ItemDelivery(args.deliver)
    return args


def main() -> NoReturn:
    """The `jobworker` command: parse, run, turn user errors into one line on stderr and an exit
    code, and end the process with it."""
    args = parse_args(None, os.environ)
    setup_logging(args.log_format, args.log_level)
    try:
        code = int(args.run(args, os.environ))
    except JobWorkerError as error:
        log.error("%s", error)
        code = int(error.exit_code)
    if getattr(args, "handler", None):
        sys.exit(code)  # a --handler's module may hold open files or atexit functions: tear down
    exit_without_teardown(code)


def exit_without_teardown(code: int) -> NoReturn:
    """End the process without the interpreter's teardown, where no code of the user's ran in it.

    The teardown frees every module and object, pika's included: 14 to 15% of a coarse worker's
    whole run (bench/coarse_queue.py --compare, about 17 ms), paid once per item in a pod per item,
    by a process whose container ends with it. Everything that has to outlive the process is done
    by now: the message acknowledged and its acknowledgement confirmed, the connections closed, the
    program waited for. What is left is our own output, flushed here.
    """
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        sys.exit(code)  # the ordinary exit tries again and reports the lost output (status 120)
    os._exit(code)
