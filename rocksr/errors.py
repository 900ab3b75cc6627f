"""The base class of every error rocksr reports to a user as one line (file + problem)."""


class RocksrError(Exception):
    """A problem with the user's inputs or files; the CLI prints it and exits with status 2."""
