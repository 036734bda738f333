"""The errors the tool raises on purpose. Each message says what went wrong and what to
do; `xata-migration` prints it and exits 2, and Dagster shows it on the failed step."""


class XataMigrationError(Exception):
    """Base of every error below."""


class UsageError(XataMigrationError):
    """A command was given too little to work with (a URL, a plan, a name)."""


class LoadError(XataMigrationError, RuntimeError):
    """The table cannot be written as the plan says; nothing was written."""
