"""Errors a person can act on: the CLI prints their message as one line and exits non-zero."""


class ConfigError(Exception):
    """Doorstep cannot start or run as configured; the message says what to do."""


class CouchUnavailable(ConfigError):
    """CouchDB cannot be reached (or answered with an error we cannot work around)."""
