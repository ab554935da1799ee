"""IPIS servers: the send module (``send``), and the shared database and storage helpers.

Installed as ``ipis_server`` from the ``server/`` folder. ``cli`` composes the ``ipis``
command line from the core's and the servers' commands.
"""
