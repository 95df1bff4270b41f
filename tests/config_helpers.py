"""Comparing configs with the mmdet and mmpretrain configs they inherit."""


def without_scope(value):
    """A config value (dicts and lists, nested) without the ``_scope_`` keys
    that inheriting through ``mmdet::`` or ``mmpretrain::`` adds."""
    if isinstance(value, dict):
        return {
            k: without_scope(v)
            for k, v in value.items() if k != '_scope_'
        }
    if isinstance(value, (list, tuple)):
        return [without_scope(v) for v in value]
    return value
