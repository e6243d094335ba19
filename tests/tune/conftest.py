"""Pin torch to one thread per test (shared 2-core machine): the training tests' fixture."""

from train.conftest import one_thread  # noqa: F401  (autouse fixture)
