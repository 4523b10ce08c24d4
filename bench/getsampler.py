"""The GET sampler of bench/load.py, a process of its own (as a learner's browser is), so its
timings do not wait on the POST driver's event loop.

Reads "<submission id> <token>" lines on stdin (the accepted submissions, as they come);
GETs a random one of them RATE times a second with its owner's token; when stdin closes,
prints the latencies of the 200 answers (ms) as a JSON list.

    python bench/getsampler.py http://127.0.0.1:8000 20
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
import time

import aiohttp


def main(base_url: str, rate: float) -> None:
    """Sample until stdin closes, then print the latencies."""
    known: list[tuple[str, str]] = []
    done = threading.Event()

    def read() -> None:
        for line in sys.stdin:
            sid, _, token = line.strip().partition(" ")
            if token:
                known.append((sid, token))
        done.set()

    threading.Thread(target=read, daemon=True).start()

    async def run() -> list[float]:
        times: list[float] = []
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(base_url, timeout=timeout) as http:
            while not done.is_set():
                await asyncio.sleep(1 / rate)
                if not known:
                    continue
                sid, token = random.choice(known)
                t0 = time.perf_counter()
                try:
                    async with http.get(
                        f"/api/v1/submissions/{sid}", headers={"Authorization": f"Bearer {token}"}
                    ) as resp:
                        await resp.read()
                        if resp.status == 200:
                            times.append((time.perf_counter() - t0) * 1000)
                except (aiohttp.ClientError, TimeoutError):
                    pass
        return times

    print(json.dumps(asyncio.run(run())))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
