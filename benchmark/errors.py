"""The one error type of the builder: bad input a user can fix.

The CLI prints its message as one line on stderr and exits with code 2; it is
raised before anything is written, so a failed build changes nothing.
"""


class BuildError(Exception):
    """Bad build input; the message is one line naming the file and the fix."""
