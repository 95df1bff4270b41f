"""Changes that hooks make for each training iteration, undone even when the
iteration raises."""
import contextlib
import functools
from typing import Callable, ContextManager, Dict

from mmengine.runner import BaseLoop


def scope_train_iterations(loop: BaseLoop, owner: object,
                           scope: Callable[[], ContextManager]
                           ) -> Callable[[], None]:
    """Run every later iteration of a training loop inside ``scope()``.

    mmengine calls no hook when training raises, so a change that a hook
    makes to the model in ``before_train`` and undoes in ``after_train``
    would outlive a failed run. Entered around the loop's ``run_iter``
    (the ``before_train_iter`` hooks, ``train_step`` and the
    ``after_train_iter`` hooks), the change lasts one iteration and is
    undone whether the iteration returns or raises. The loop's ``run_iter``
    is wrapped once for all the scopes, entered in the order they were
    given; a scope of ``owner`` replaces the one ``owner`` gave before (in
    a run that raised, which left it).

    Args:
        loop (BaseLoop): The runner's training loop (``runner.train_loop``),
            whose ``run_iter`` runs one iteration, as mmengine's
            ``EpochBasedTrainLoop`` and ``IterBasedTrainLoop`` do.
        owner (object): The hook making the change.
        scope (Callable[[], ContextManager]): Makes the change on enter and
            undoes it on exit.

    Returns:
        Callable[[], None]: Removes the scope, and the wrapper of
        ``run_iter`` with the last scope (call it in ``after_train``).
    """
    if not callable(getattr(loop, 'run_iter', None)):
        raise TypeError(f'{type(owner).__name__} needs a training loop with '
                        f'a run_iter method (one training iteration), as '
                        f"mmengine's EpochBasedTrainLoop and "
                        f'IterBasedTrainLoop have; got '
                        f'{type(loop).__name__}')
    scoped_run_iter = vars(loop).get('run_iter')
    if not hasattr(scoped_run_iter, 'scopes'):
        own_run_iter = scoped_run_iter
        run_iter = loop.run_iter
        scopes: Dict[int, Callable[[], ContextManager]] = {}

        @functools.wraps(run_iter)
        def scoped_run_iter(*args, **kwargs):
            with contextlib.ExitStack() as stack:
                for make_scope in list(scopes.values()):
                    stack.enter_context(make_scope())
                return run_iter(*args, **kwargs)

        def unwrap() -> None:
            if own_run_iter is None:
                del loop.run_iter
            else:
                loop.run_iter = own_run_iter

        scoped_run_iter.scopes = scopes
        scoped_run_iter.unwrap = unwrap
        loop.run_iter = scoped_run_iter
    scoped_run_iter.scopes[id(owner)] = scope

    def unscope() -> None:
        scoped_run_iter.scopes.pop(id(owner), None)
        if (not scoped_run_iter.scopes
                and vars(loop).get('run_iter') is scoped_run_iter):
            scoped_run_iter.unwrap()

    return unscope
