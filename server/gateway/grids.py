"""Grid database names → grids (id, name, community), read from the directory and cached.

Authorization needs a grid's community on every request; the directory changes rarely (an
admin adds a grid), so the list is re-read every 30 s, and at most every 2 s when someone
asks for a database name the list does not know. When CouchDB cannot be read, the last
list keeps serving.
"""

from __future__ import annotations

import time

import anyio

from server.errors import CouchUnavailable
from sync.couch import Couch
from sync.directory import Directory, Grid


class GridIndex:
    REFRESH_SECONDS = 30.0
    MISS_REFRESH_SECONDS = 2.0

    def __init__(self, couch: Couch) -> None:
        self.couch = couch
        self._by_db: dict[str, Grid] = {}
        self._loaded_at = -1e9
        self._lock = anyio.Lock()

    async def all(self) -> list[Grid]:
        await self._refresh(self.REFRESH_SECONDS)
        return sorted(self._by_db.values(), key=lambda g: g.id)

    async def by_db(self, db: str) -> Grid | None:
        await self._refresh(self.REFRESH_SECONDS)
        if db not in self._by_db:
            await self._refresh(self.MISS_REFRESH_SECONDS)
        return self._by_db.get(db)

    async def by_id(self, grid_id: str) -> Grid | None:
        await self._refresh(self.REFRESH_SECONDS)
        return next((g for g in self._by_db.values() if g.id == grid_id), None)

    async def _refresh(self, max_age: float) -> None:
        if time.monotonic() - self._loaded_at < max_age:
            return
        async with self._lock:
            if time.monotonic() - self._loaded_at < max_age:
                return
            try:
                grids = await anyio.to_thread.run_sync(Directory(self.couch).grids)
            except CouchUnavailable:
                if not self._by_db:
                    raise
                # keep the last list; try again in a moment rather than on every request
                retry_in = self.MISS_REFRESH_SECONDS
                self._loaded_at = time.monotonic() - self.REFRESH_SECONDS + retry_in
                return
            self._by_db = {g.db: g for g in grids}
            self._loaded_at = time.monotonic()
