"""The base class of every error rocksr reports to a user as one line (file + problem)."""


class RocksrError(Exception):
    """A problem with the user's inputs or files; the CLI prints it and exits with status 2."""


def one_line(exc: BaseException) -> str:
    """``"Type: message"`` of ``exc`` on one line, at most 300 characters (for an error)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
