"""Deprecated names and arguments: one warning, one way to keep an old name."""
import warnings

from mmengine.registry import Registry


def warn_deprecated(old: str, new: str) -> None:
    """Warn that ``old`` is deprecated in favour of ``new``.

    Args:
        old (str): The deprecated name or argument.
        new (str): What to use instead.
    """
    warnings.warn(f'`{old}` is deprecated; use `{new}`', FutureWarning,
                  stacklevel=3)


def register_deprecated_alias(registry: Registry, old_name: str,
                              new_cls: type) -> type:
    """Register ``old_name`` in ``registry`` as a subclass of ``new_cls``
    that warns when built, then builds ``new_cls``.

    Args:
        registry (Registry): The registry ``new_cls`` is registered in.
        old_name (str): The previous registered name.
        new_cls (type): The class that replaces it.

    Returns:
        type: The registered alias class.
    """

    def __init__(self, *args, **kwargs) -> None:
        warn_deprecated(old_name, new_cls.__name__)
        new_cls.__init__(self, *args, **kwargs)

    alias = type(old_name, (new_cls, ), {
        '__init__': __init__,
        '__doc__': f'Deprecated name of :class:`{new_cls.__name__}`.',
        '__module__': new_cls.__module__,
    })
    registry.register_module(name=old_name, module=alias)
    return alias
