"""The command line, ``python -m tgdmat {train, sample, csp, generate, evaluate}``.

* :mod:`tgdmat.cli.main` — the verbs, their options, and one-line errors (exit status 2) for
  everything a user can get wrong; ``--debug`` shows the traceback.
* :mod:`tgdmat.cli.evaluate` — ``evaluate``: read generated crystals and score them.

Nothing here computes anything itself: each verb calls the library (:mod:`tgdmat.train`,
:mod:`tgdmat.sample`, :mod:`tgdmat.sample_set`, :mod:`tgdmat.benchmark`, :mod:`tgdmat.metrics`).
"""
