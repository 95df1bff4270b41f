"""Command-line conventions shared by the tools of ``tools/``."""
import argparse


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
