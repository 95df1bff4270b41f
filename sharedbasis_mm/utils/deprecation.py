"""Deprecated names and arguments: they keep working, with a warning naming
what replaces them."""
import warnings

from mmengine.registry import Registry


def warn_deprecated(old: str, new: str) -> None:
    """Warn (a ``FutureWarning``) that ``old`` is deprecated for ``new``.

    Args:
        old (str): The deprecated name, argument or form.
        new (str): What to use instead.
    """
    warnings.warn(f'`{old}` is deprecated; use `{new}`', FutureWarning,
                  stacklevel=3)


def register_deprecated_alias(registry: Registry, old_name: str,
                              new_cls: type) -> type:
    """Register ``new_cls`` in ``registry`` under its previous name too.

    The alias is a subclass named ``old_name`` whose ``__init__`` warns
    (:func:`warn_deprecated`) and then builds ``new_cls`` with the same
    arguments; a config with ``type=old_name`` builds the same model as one
    with the new name.

    Args:
        registry (Registry): The registry ``new_cls`` is registered in.
        old_name (str): The previous registered name.
        new_cls (type): The class that replaces it.

    Returns:
        type: The alias class.
    """
    new_name = new_cls.__name__

    def __init__(self, *args, **kwargs) -> None:
        warn_deprecated(old_name, new_name)
        new_cls.__init__(self, *args, **kwargs)

    alias = type(
        old_name, (new_cls, ),
        dict(
            __init__=__init__,
            __module__=new_cls.__module__,
            __doc__=f'Deprecated alias of :class:`{new_name}`.'))
    registry.register_module(old_name, module=alias)
    return alias
