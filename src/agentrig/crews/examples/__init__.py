"""The ready-made crews and flows (``EXAMPLES`` in :mod:`agentrig.crews.catalog`), each a
folder beside this file with its README: the crews ``research``, ``sales`` and
``code-review``, and the flows ``content`` and ``support``. Their agents use the router role
``default``, so they run offline on the embedded local model. The Python their YAML names
is in ``content_flow`` and ``support_flow``; it imports nothing from ``agentrig.flows``
(crews are the inner layer), so its step functions return a text or variable updates.
"""
