"""Ray: a local Ray started or a cluster joined on a thread of its own while the driver opens
its stores (raystart.py), the pool of trial actors and the calls the scheduler makes on them
(pool.py), a user's plug-in code shipped to every actor (plugins.py), Ray's token auth
(raytoken.py), and a sweep's driver submitted as a Ray Job (jobs.py)."""
