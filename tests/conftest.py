"""Shared fixtures: a real PostgreSQL for every test that needs one.

``TEST_DATABASE_URL`` (or ``DATABASE_URL``) names a server to use; otherwise a throwaway server is
started with haowatch's own embedded-server code. Either way each test gets a fresh database cloned
from a migrated template, so tests never see each other's rows. Database tests are never skipped:
with no server reachable they fail.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import DictRow

from db import migrate
from db.connection import connect
from tests.helpers import maintenance_url

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A URL to a maintenance database on a server where tests may create databases."""
    with maintenance_url() as url:
        yield url


def _url_for(admin_url: str, dbname: str) -> str:
    return make_conninfo(admin_url, dbname=dbname)


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    """A migrated database to clone per test (CREATE DATABASE … TEMPLATE is fast)."""
    name = f"haowatch_tmpl_{os.getpid()}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
    with connect(_url_for(pg_admin_url, name)) as conn:
        migrate.upgrade(conn)
    yield name
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _create_db(admin_url: str, template: str | None) -> str:
    name = f"haowatch_t_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if template:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
            )
        else:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name))
            )
    return name


def _drop_db(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def db_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """URL of a fresh, migrated database for this test alone."""
    name = _create_db(pg_admin_url, template_db)
    yield _url_for(pg_admin_url, name)
    _drop_db(pg_admin_url, name)


@pytest.fixture
def empty_db_url(pg_admin_url: str) -> Iterator[str]:
    """URL of a fresh database with no schema at all (for migration tests)."""
    name = _create_db(pg_admin_url, None)
    yield _url_for(pg_admin_url, name)
    _drop_db(pg_admin_url, name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[DictRow]]:
    """An autocommit connection (dict rows) to this test's database."""
    with connect(db_url) as connection:
        yield connection
