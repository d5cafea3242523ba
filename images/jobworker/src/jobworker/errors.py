"""The one exception type that reaches the user.

Anything the user can fix (a wrong URL, a missing module, a bad option) is raised as
JobWorkerError; the CLI prints its message as one line and exits with its code, never with a
traceback. Every other exception is a bug and keeps its traceback.
"""

from jobworker.constants import ExitCode


class JobWorkerError(Exception):
    """A failure explained by one line of text, with the exit status it maps to."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(JobWorkerError):
    """A command line that cannot work as given: a missing, malformed or conflicting option.

    Options may come from environment variables; those count as the command line too. Running
    again cannot fix it, so it exits 2 (ExitCode.USAGE), as argparse does for its own checks, and
    the charts' podFailurePolicy fails the Job at once on that status instead of retrying.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)
