"""The replication gateway: `/couch/<db>/...`, the only way a browser reaches CouchDB.

- `routes` names each request (allow-list) and checks its parameters and bodies;
- `writes` validates documents before anything is written;
- `local` keeps each user's `_local` checkpoints apart;
- `proxy` forwards to CouchDB with the server's credentials and streams the answer back;
- `upstream` is the async CouchDB connection; `grids` maps database names to grids;
- `endpoint` ties them together as one ASGI app serving everything under `/couch`.
Who may do what is decided in `server.authz`, never here.
"""
