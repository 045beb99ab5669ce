"""The one exception type of the baselines that is the user's to fix."""


class BaselineError(Exception):
    """Bad input a user can cause (missing file, wrong preset, unfit weights).

    The message is one line that names the file or option and the fix; the
    command line prints it without a traceback and exits with status 2.
    """
