"""Errors a user can fix (bad config, missing input): the CLI prints them in one line, exit 2."""


class UserError(Exception):
    """A problem with the user's input or configuration, not a bug."""


class ConfigError(UserError):
    """A build config that does not validate; the message names the key."""
