"""Exceptions for bad user input: the CLI prints their message as one line, exit 2."""


class UserError(Exception):
    """Bad input a user can fix; the message names the file, the field and the allowed values."""


class SpecError(UserError):
    """An architecture, space or recipe file that does not validate."""
