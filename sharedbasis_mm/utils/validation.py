"""Checks of the arguments and files that enter sharedbasis_mm.

Every public argument is checked where it enters (a layer's, a hook's or a
metric's ``__init__``, a tool's command line) with one of these functions,
so that a wrong value stops at once with a message naming the parameter (or
the file), the value and what was expected, instead of a silently wrong
result or a crash deep inside. A wrong type raises a ``TypeError``, a value
of the right type out of range a ``ValueError``. ``owner`` (the class or
tool that takes the argument) prefixes the message when given.

A ``bool`` is never taken for a number: ``blocks=True`` is refused, not read
as 1.
"""
import json
import math
import numbers
import os
import os.path as osp
import tempfile
from typing import Any, Iterable, Optional, Sequence, Tuple, Type, Union


def _prefix(owner: Optional[str]) -> str:
    return f'{owner}: ' if owner else ''


def _got(name: str, value: Any) -> str:
    return f'got {name}={value!r} ({type(value).__name__})'


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer (Python's or numpy's), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number (int, float, numpy's), not a
    bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_type(name: str,
               value: Any,
               types: Union[Type, Tuple[Type, ...]],
               owner: Optional[str] = None) -> Any:
    """Return ``value``; raise a TypeError unless it is an instance of
    ``types`` (a bool is not an ``int`` here)."""
    types = types if isinstance(types, tuple) else (types, )
    if isinstance(value, types) and not (isinstance(value, bool)
                                         and bool not in types):
        return value
    names = ' or '.join(t.__name__ for t in types)
    raise TypeError(f'{_prefix(owner)}{name} must be of type {names}, '
                    f'{_got(name, value)}')


def check_bool(name: str, value: Any, owner: Optional[str] = None) -> bool:
    """Return ``value``; raise a TypeError unless it is True or False."""
    if not isinstance(value, bool):
        raise TypeError(f'{_prefix(owner)}{name} must be True or False, '
                        f'{_got(name, value)}')
    return value


def _range_text(min_value: Optional[float], max_value: Optional[float],
                min_inclusive: bool) -> str:
    low = f'{">=" if min_inclusive else ">"} {min_value}'
    if min_value is not None and max_value is not None:
        return f'{low} and <= {max_value}'
    if min_value is not None:
        return low
    return f'<= {max_value}' if max_value is not None else ''


def check_int(name: str,
              value: Any,
              min_value: Optional[int] = None,
              max_value: Optional[int] = None,
              owner: Optional[str] = None) -> int:
    """Return ``value`` as an int; raise a TypeError unless it is an integer
    (not a bool, not a float, not a string) and a ValueError unless it lies
    in ``[min_value, max_value]`` (either bound None for none)."""
    if min_value == 1 and max_value is None:
        expected = 'a positive integer'
    else:
        bounds = _range_text(min_value, max_value, True)
        expected = f'an integer {bounds}'.rstrip()
    if not is_integer(value):
        raise TypeError(f'{_prefix(owner)}{name} must be {expected}, '
                        f'{_got(name, value)}')
    if ((min_value is not None and value < min_value)
            or (max_value is not None and value > max_value)):
        raise ValueError(f'{_prefix(owner)}{name} must be {expected}, got '
                         f'{name}={value!r}')
    return int(value)


def check_positive_int(name: str,
                       value: Any,
                       owner: Optional[str] = None) -> int:
    """Return ``value``; raise unless it is an integer >= 1."""
    return check_int(name, value, min_value=1, owner=owner)


def check_number(name: str,
                 value: Any,
                 min_value: Optional[float] = None,
                 max_value: Optional[float] = None,
                 min_inclusive: bool = True,
                 owner: Optional[str] = None) -> float:
    """Return ``value`` as a float; raise a TypeError unless it is a real
    number (not a bool) and a ValueError unless it is finite and lies in
    the range (``min_value`` excluded when ``min_inclusive`` is False)."""
    bounds = _range_text(min_value, max_value, min_inclusive)
    expected = f'a finite number {bounds}'.rstrip()
    if not is_number(value):
        raise TypeError(f'{_prefix(owner)}{name} must be {expected}, '
                        f'{_got(name, value)}')
    too_low = min_value is not None and (
        value < min_value or (not min_inclusive and value == min_value))
    too_high = max_value is not None and value > max_value
    if not math.isfinite(value) or too_low or too_high:
        raise ValueError(f'{_prefix(owner)}{name} must be {expected}, got '
                         f'{name}={value!r}')
    return float(value)


def check_choice(name: str,
                 value: Any,
                 choices: Iterable,
                 owner: Optional[str] = None) -> Any:
    """Return ``value``; raise a ValueError unless it is one of
    ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f'{_prefix(owner)}{name} must be one of '
                         f'{choices}, got {name}={value!r}')
    return value


def check_file(path: Any, what: str = 'file') -> str:
    """Return ``path``; raise unless it names a readable file.

    Args:
        path: The path given.
        what (str): What the file should be, for the message (``'COCO
            annotation file'``, ``'checkpoint'``...).

    Raises:
        TypeError: ``path`` is not a string or ``os.PathLike``.
        FileNotFoundError, IsADirectoryError, PermissionError: it names
            no file, a folder, or a file that cannot be read.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f'the {what} must be a path, '
                        f'{_got("path", path)}')
    path = os.fspath(path)
    if not osp.exists(path):
        raise FileNotFoundError(f'no {what} at {path!r}: it does not exist')
    if osp.isdir(path):
        raise IsADirectoryError(f'the {what} {path!r} is a folder; expected '
                                'a file')
    if not os.access(path, os.R_OK):
        raise PermissionError(f'the {what} {path!r} cannot be read')
    return path


def load_json_file(path: Any,
                   what: str = 'JSON file',
                   required_keys: Sequence[str] = ()) -> dict:
    """Read a JSON file that must hold an object with ``required_keys``.

    Args:
        path: The file.
        what (str): What the file should be, for the messages.
        required_keys (Sequence[str]): Keys the object must have.

    Returns:
        dict: The object.

    Raises:
        ValueError: The file is empty, not JSON, holds no object (a list,
            for instance) or misses one of ``required_keys``; the message
            names the file.
    """
    path = check_file(path, what)
    with open(path, 'rb') as f:
        text = f.read()
    if not text.strip():
        raise ValueError(f'the {what} {path!r} is empty; expected a JSON '
                         'object')
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f'the {what} {path!r} is not valid JSON ({error}); '
                         'expected a JSON object') from None
    return check_json_object(data, path, what, required_keys)


def check_json_object(data: Any,
                      path: str,
                      what: str = 'JSON file',
                      required_keys: Sequence[str] = ()) -> dict:
    """Return ``data`` read from ``path``; raise a ValueError unless it is a
    dict with ``required_keys`` (the message names the file)."""
    keys = f' with the keys {list(required_keys)}' if required_keys else ''
    if not isinstance(data, dict):
        size = f' of {len(data)} entries' if isinstance(data, list) else ''
        raise ValueError(f'the {what} {path!r} holds a '
                         f'{type(data).__name__}{size}; expected a JSON '
                         f'object{keys}')
    missing = [key for key in required_keys if key not in data]
    if missing:
        raise ValueError(f'the {what} {path!r} has no {missing} (its keys: '
                         f'{sorted(data)[:10]}); expected a JSON object'
                         f'{keys}')
    return data


def check_writable_dir(name: str,
                       path: Any,
                       owner: Optional[str] = None) -> str:
    """Return ``path``; raise unless files can be written in the folder
    ``path`` or it can be created.

    Nothing is left behind: the nearest existing folder of ``path`` (itself
    or a parent) is tried with a temporary file, so that a failure shows
    before any work is done, not when the first file is written.

    Raises:
        TypeError: ``path`` is not a string or ``os.PathLike``.
        OSError: ``path`` or a parent is a file, or the folder cannot be
            written in: of the type of the cause (``PermissionError``,
            ``NotADirectoryError``...), with a message naming ``name``, the
            path and the cause.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f'{_prefix(owner)}{name} must be a folder path, '
                        f'{_got(name, path)}')
    path = os.fspath(path)
    existing = osp.abspath(path)
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    try:
        if not osp.isdir(existing):
            raise NotADirectoryError(f'{existing!r} is a file')
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise type(error)(
            f'{_prefix(owner)}{name}={path!r} is not a folder where files '
            f'can be written: {error.strerror or error}') from None
    return path


def check_divisible(name: str,
                    value: int,
                    divisor_name: str,
                    divisor: int,
                    owner: Optional[str] = None) -> int:
    """Return ``value``; raise a ValueError unless ``divisor`` divides
    it."""
    if value % divisor != 0:
        raise ValueError(f'{_prefix(owner)}{name}={value} must be divisible '
                         f'by {divisor_name}={divisor}')
    return value
