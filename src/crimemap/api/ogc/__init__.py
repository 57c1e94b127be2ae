"""OGC API - Features under ``/ogc`` (:mod:`.routes`): its parameters, pages, metadata, OpenAPI document and errors."""
