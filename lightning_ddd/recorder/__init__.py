"""The recorder callback (imports torch; the ``lightning`` flavour is loaded lazily by the package)."""
