"""User-facing errors: one line that says what is wrong and how to fix it."""


class DgmError(Exception):
    """A mistake in the user's input (bad option, missing file, corrupt data).

    The CLI prints ``dgm: error: <message>`` and exits with status 2, without a traceback
    (``--debug`` shows it).
    """
