"""Synthetic police.uk bulk archives of any size, deterministic for a seed.

The real archive is too small to measure a loader or a query at national
scale (and the few real files we keep must not be copied around), so this
module writes files that *look* like the archive to every consumer: the same
folder layout (``YYYY-MM/YYYY-MM-<force>-street.csv`` and ``-outcomes.csv``,
or one ``YYYY-MM.zip`` per month), the same headers, LF line ends, six-decimal
coordinates, empty Crime IDs for anti-social behaviour and some British
Transport Police rows, "No Location" rows, crimes whose outcomes arrive in a
later month's outcomes file, and crimes clustered on shared anonymised map
points around real town centres, so spatial queries hit realistic densities.

Speed matters (benchmarks write millions of rows), so every random choice of
a month is drawn at once with numpy, and rows are written by joining
pre-encoded byte pieces (id, month/force head, map point, category/outcome
tail) instead of formatting each row in Python.

The package: :mod:`~crimemap.load.generate.world` holds the scenery every file
shares (towns, map points, seeds, months, the sink files are written to);
:mod:`~crimemap.load.generate.crimes` draws the street and outcomes files,
:mod:`~crimemap.load.generate.stops` the stop-and-search files, and
:func:`crimemap.load.generate.archive.generate` writes a whole archive with them.
"""
