"""Seeded fraud-style event simulators: the demo (``demo``) and a second, differently built one
(``terminals``), used for held-out checks."""
