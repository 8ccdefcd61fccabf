"""The --help of every Squall tool names each option's default.

argparse's ArgumentDefaultsHelpFormatter appends "(default: VALUE)"; an option whose
default is None says in its own help what not giving it means ("default: ..."), and then
nothing is appended (a bare "(default: None)" would tell the reader nothing).
"""
from __future__ import annotations

import argparse

from . import __version__


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is None:
            return text
        return super()._get_help_string(action)


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with this formatter and --version (prog and the harness's version)."""
    p = argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def undocumented_defaults(p: argparse.ArgumentParser) -> list[str]:
    """The options whose --help line would not name their default (the tools' tests check
    that there are none)."""
    return [a.option_strings[0] for a in p._actions
            if a.option_strings and a.default is None and "default" not in (a.help or "")
            and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]
