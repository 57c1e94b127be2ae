"""Synthetic police.uk bulk archives (see :mod:`crimemap.load.generate.world`)."""
