"""argparse conventions shared by the tools of ``tools/``: a bad value
stops a tool naming the option, the value and what was expected, and
``--help`` shows the defaults."""
import argparse
import math
from typing import Callable


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every option's default, as ``(default: ...)``.

    Not for flags (``store_true``), options without a default (``None``) or
    a help text that already says its default.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ''
        if (action.default is None or action.default is False
                or action.default is argparse.SUPPRESS
                or '(default:' in help_text or not action.option_strings
                and action.nargs not in (argparse.OPTIONAL,
                                         argparse.ZERO_OR_MORE)):
            return help_text
        default = action.default
        if isinstance(default, (list, tuple)):
            default = ' '.join(str(value) for value in default)
        return f'{help_text} (default: {default})'.strip()


def int_at_least(least: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``least``.

    A bad value stops the tool with argparse's usage and e.g. ``argument
    --iters: expected an integer >= 1, got '0'``.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < least:
            raise argparse.ArgumentTypeError(
                f'expected an integer >= {least}, got {text!r}')
        return value

    parse.__name__ = f'integer >= {least}'
    return parse


def float_at_least(least: float,
                   inclusive: bool = True) -> Callable[[str], float]:
    """An argparse ``type``: a finite number >= ``least`` (> ``least``
    unless ``inclusive``), named as :func:`int_at_least` names a bad one."""
    expected = f'a finite number {">=" if inclusive else ">"} {least:g}'

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < least or (
                not inclusive and value == least):
            raise argparse.ArgumentTypeError(
                f'expected {expected}, got {text!r}')
        return value

    parse.__name__ = expected
    return parse
