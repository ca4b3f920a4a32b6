"""Command-line parameters shared by several commands: points in time.

A time argument is either an ISO-8601 date-time -- ``2024-07-18``, ``2024-07-18T13:30``,
``2024-07-18 13:30:05.123456789``, ``2024-07-18T15:30:05+02:00`` -- taken as UTC unless it carries
an offset (``Z`` or ``+HH:MM``), with up to nine fractional digits (nanoseconds); or an integer
number of nanoseconds since the Unix epoch (``1721309405123456789``). The result is int64 ns, the
unit of every time inside avmm. A window ``--from A --to B`` is ``[A, B)``.

``parse_time_ns(text, flag)`` is the function.
"""

from __future__ import annotations

import datetime as dt
import re

from avmm.errors import UserError

I64_MAX = (1 << 63) - 1
I64_MIN = -(1 << 63)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_INT = re.compile(r"[+-]?\d+")
# the fraction of a second, up to the end or the offset: datetime parses at most 6 digits
_FRACTION = re.compile(r"(?<=\d{2}:\d{2}:\d{2})[.,](\d+)(?=$|Z|z|[+-]\d)")
_EXAMPLE = "e.g. 2024-07-18T13:30:00Z, 2024-07-18 13:30:00.5+02:00 or 1721309400000000000"
_RANGE = "1677-09-21T00:12:43Z to 2262-04-11T23:47:16Z"


def parse_time_ns(text: str, flag: str = "time") -> int:
    """A point in time as int64 nanoseconds since the Unix epoch.

    Parameters
    ----------
    text : str
        ISO-8601 (UTC unless it has an offset; up to 9 fractional digits) or integer ns since the
        epoch.
    flag : str
        How the user gave it (``"--from"``), for the message.

    Returns
    -------
    int
        Nanoseconds since 1970-01-01T00:00:00Z, within int64.

    Raises
    ------
    UserError
        One line naming the flag and the text: not a time, or outside what int64 ns can hold.
    """
    s = text.strip()
    if _INT.fullmatch(s):
        v = int(s)
        if not (I64_MIN <= v <= I64_MAX):
            raise UserError(f"{flag} {text}: {len(s.lstrip('+-'))}-digit integer is outside int64 nanoseconds")
        return v
    frac_ns = 0
    m = _FRACTION.search(s)
    if m:
        digits = m.group(1)
        if len(digits) > 9:
            raise UserError(f"{flag} {text}: more than 9 fractional digits (nanoseconds are the finest unit)")
        frac_ns = int(digits.ljust(9, "0"))
        s = s[: m.start()] + s[m.end() :]
    try:
        d = dt.datetime.fromisoformat(s)
    except ValueError:
        raise UserError(
            f"{flag} {text}: not a time; give ISO-8601 or integer ns since the epoch ({_EXAMPLE})"
        ) from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    try:
        delta = d - _EPOCH
    except OverflowError:
        raise UserError(f"{flag} {text}: outside the times int64 nanoseconds hold ({_RANGE})") from None
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000 + frac_ns
    if not (I64_MIN <= ns <= I64_MAX):
        raise UserError(f"{flag} {text}: outside the times int64 nanoseconds hold ({_RANGE})")
    return ns
