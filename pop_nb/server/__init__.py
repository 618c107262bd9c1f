"""The Jupyter server extension: ``/pop/api/...`` (REST) and ``/pop/api/events`` (Server-Sent Events),
behind Jupyter's own authentication. Enabled on install by ``jupyter_server_config.d/pop_nb.json``."""
