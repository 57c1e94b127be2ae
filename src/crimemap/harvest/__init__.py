"""Harvest remote crime APIs into the store: police.uk's street-level crimes, Maps Engine tables.

The public surface; the modules behind it:

- :mod:`~crimemap.harvest.http`: one paced, retrying HTTP client (429 and
  ``Retry-After``, backoff on 5xx and connection errors, 15 requests a second);
- :mod:`~crimemap.harvest.state`: the resumable state file;
- :mod:`~crimemap.harvest.tiling`: tiles a box, splits tiles past police.uk's 10,000 limit;
- :mod:`~crimemap.harvest.policeuk` and :mod:`~crimemap.harvest.policeuk_stops`: crimes and stops, tile by tile;
- :mod:`~crimemap.harvest.mapsengine`: pages a table through ``nextPageToken``;
- :mod:`~crimemap.harvest.cli`: ``crimemap harvest policeuk|mapsengine``.

>>> from crimemap.harvest import BBox, HarvestClient, HarvestState, PoliceUKHarvest, harvest_policeuk
>>> what = PoliceUKHarvest(BBox.parse("-0.114,51.506,-0.072,51.524"), ("2017-01",), "city-of-london")
>>> with HarvestClient("http://127.0.0.1:8000/api") as client, HarvestState(  # doctest: +SKIP
...     "state.sqlite", what.job(client.base_url)) as state:
...     harvest_policeuk(store, client, what, state)
"""

from crimemap.harvest.http import DEFAULT_RATE, HarvestClient, HarvestError, HttpStats, RetryPolicy
from crimemap.harvest.mapsengine import MapsEngineHarvest, MapsEngineSummary, harvest_mapsengine
from crimemap.harvest.policeuk import PoliceUKHarvest, PoliceUKSummary, harvest_policeuk, parse_months
from crimemap.harvest.state import HarvestState, default_state_path
from crimemap.harvest.tiling import BBox

__all__ = [
    "DEFAULT_RATE",
    "BBox",
    "HarvestClient",
    "HarvestError",
    "HarvestState",
    "HttpStats",
    "MapsEngineHarvest",
    "MapsEngineSummary",
    "PoliceUKHarvest",
    "PoliceUKSummary",
    "RetryPolicy",
    "default_state_path",
    "harvest_mapsengine",
    "harvest_policeuk",
    "parse_months",
]
