"""Fixtures every test folder may use: the in-process server (``start_server``, ``server``:
tests/integration/conftest.py), a private Redis (``redis_server``, ``own_redis``:
tests/private_redis.py), a private PostgreSQL (``postgres_server``, ``own_postgres``:
tests/private_postgres.py) and a real load balancer (``start_haproxy``: tests/haproxy.py). Shared
helpers are in tests/tools.py and tests/integration/client.py."""

from tests.haproxy import start_haproxy  # noqa: F401 - fixtures
from tests.hung import pytest_timeout_cancel_timer, pytest_timeout_set_timer  # noqa: F401 - hooks
from tests.integration.conftest import server, start_server  # noqa: F401 - fixtures
from tests.private_postgres import (  # noqa: F401 - fixtures
    own_postgres,
    postgres_server,
    postgres_template,
)
from tests.private_redis import own_redis, redis_server  # noqa: F401 - fixtures
