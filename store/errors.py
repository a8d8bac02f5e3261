"""The error type of the store."""


class StoreError(ValueError):
    """A database that cannot be opened, or a request the store cannot serve.

    It subclasses ValueError so that the command-line root prints it as one line and exits with
    status 2, like every other kind of bad input.
    """
