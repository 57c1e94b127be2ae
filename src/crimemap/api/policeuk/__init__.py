"""The police.uk API under ``/api``: crimes, outcomes and forces (:mod:`.crimes`), stop and search
(:mod:`.stops`), neighbourhoods (:mod:`.neighbourhoods`), their parameters, schema and errors."""
