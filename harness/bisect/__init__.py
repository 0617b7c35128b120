"""``harness bisect``: find the commit (or the patch of a series) that changed a check's verdict.

Two drivers share one step: :mod:`harness.bisect.gitbisect` runs ``git bisect run``
over a repository's history, :mod:`harness.bisect.series` does a plain binary
search over the first *k* patches of a series. The step
(:mod:`harness.bisect.step`) builds, boots, runs the scenario and maps the
outcome to good / bad / skip (:mod:`harness.bisect.verdict`) -- a build or
infrastructure failure is *skip*, never *bad*, because it says nothing about
the behaviour being bisected.
"""
