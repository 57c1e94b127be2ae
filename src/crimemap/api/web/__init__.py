"""The web map at ``/`` and its assets (:mod:`.routes`), and the API documentation at ``/docs`` (:mod:`.docs`)."""
