"""Reproductions of the papers avmm implements, run on the library's own models.

* :mod:`avmm.replicate.as2008` -- the Monte Carlo simulation of Avellaneda & Stoikov (2008),
  section 3.3 (inventory strategy vs symmetric strategy);
* :mod:`avmm.replicate.glft` -- the exact optimal quotes of Gueant, Lehalle & Fernandez-Tapia
  (2013) from their ODE system (a matrix exponential) beside the engine's closed-form
  approximation.

Their figures (``plot_as2008``, ``plot_glft``) need matplotlib, the optional ``report`` extra
(:mod:`avmm.replicate.plotting` raises a one-line error naming the install when it is missing);
the computations do not.

The CLI (``avmm replicate as2008`` / ``avmm replicate glft``) lives in
:mod:`avmm.cli.replicate` and only formats what these functions return.
"""
