"""Design-space sweep over array sizes (Dask tasks: RTL cycles + board builds) and the
resource/Fmax estimator fitted to it (``hwgen sweep``, ``hwgen estimate``)."""
