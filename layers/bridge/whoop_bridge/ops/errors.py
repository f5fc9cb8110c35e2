"""The operator command's expected failures: one plain line and an exit code, no traceback."""

from __future__ import annotations

# Exit codes (the README's "Operate" section lists them).
OK = 0
FAILED = 1  # the call was made and refused or failed: 404, 409, a move task that failed
USAGE = 2  # bad arguments (argparse's own code)
UNREACHABLE = 3  # no stack, no credentials, nothing answering


class OpsError(Exception):
    """An expected failure: `str(error)` is printed as is, then the command exits `exit_code`."""

    def __init__(self, text: str, exit_code: int = FAILED) -> None:
        super().__init__(text)
        self.exit_code = exit_code
