"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input from the user (file, config value, argument). Printed as one line, exit code 2."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # one line, always
        return " ".join(self.message.split("\n"))


def missing_extra(what: str, extra: str, module: str) -> UserError:
    """The error for an optional dependency that is not installed: one line naming the install.

    Parameters
    ----------
    what : str
        The feature that needs it, e.g. ``"--report"``.
    extra : str
        The avmm extra that brings it, e.g. ``"report"``.
    module : str
        The missing module, e.g. ``"plotly"``.
    """
    return UserError(f"{what} needs {module}, which is not installed: pip install 'avmm[{extra}]'")
