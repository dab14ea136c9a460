"""The attack on napari-mask-compare's promises, run by ``scripts/attack.py``.

One module per category of the attack (issue 17): :mod:`.inputs` (bad inputs,
with :mod:`.files` and :mod:`.stores` making them), :mod:`.kills`,
:mod:`.disk` (full disk), :mod:`.journals` (writers and tampering),
:mod:`.cluster` (cluster faults). :mod:`.common` holds what they share: running
the command line, the checkers of the promises, the masks and the reference
results, and the workspace that is cleaned up at the end. :mod:`.driver` is the
child process that drives a review until it is killed.
"""
