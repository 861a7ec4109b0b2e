"""The one exception type for mistakes a user can fix."""


class UserError(ValueError):
    """A problem caused by input (a name, a number, a file); the message names the fix.

    The command line prints it as one line and exits with status 2; Python callers get it as
    a ValueError.
    """


def unknown_name(kind: str, name: str, known) -> UserError:
    """Build the error for a name missing from a registry, listing the valid names."""
    choices = ", ".join(sorted(known))
    return UserError(f"unknown {kind} {name!r}; choose one of: {choices}")
