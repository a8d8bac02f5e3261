"""Opening a database: URL resolution, errors that name the URL, SQLite settings."""

from __future__ import annotations

import re
import socket

import pytest
from sqlalchemy import text

from store import StoreError, open_store


def test_bad_scheme_names_url_and_fix():
    with pytest.raises(StoreError, match=r"cannot open database 'mysql://x/y': unsupported scheme 'mysql'; use sqlite:///PATH"):
        open_store("mysql://x/y")


def test_not_a_url():
    with pytest.raises(StoreError, match=r"cannot open database 'scalelab.db': not a database URL"):
        open_store("scalelab.db")


def test_store_error_is_value_error():
    assert issubclass(StoreError, ValueError)


def test_missing_folder(tmp_path):
    url = f"sqlite:///{tmp_path}/missing/store.db"
    with pytest.raises(StoreError, match=r"folder '.*missing' does not exist; create it or choose another path"):
        open_store(url)
    assert not (tmp_path / "missing").exists()


def test_unreachable_postgres():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/scalelab"
    with pytest.raises(StoreError, match=rf"cannot open database {re.escape(repr(url))}: .*check that the server is running"):
        open_store(url)


def test_plain_postgresql_scheme_uses_psycopg(postgres_url):
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with open_store(plain) as store:
        assert store.engine.dialect.driver == "psycopg"


def test_env_var_then_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCALELAB_DB", raising=False)
    with open_store() as store:
        store.upsert_sweep("default", {})
    assert (tmp_path / "scalelab.db").is_file()
    monkeypatch.setenv("SCALELAB_DB", f"sqlite:///{tmp_path / 'from_env.db'}")
    with open_store(None) as store:
        store.upsert_sweep("env", {})
    assert (tmp_path / "from_env.db").is_file()


def test_sqlite_pragmas(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        with store.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 10_000


def test_reopen_keeps_data(db_url):
    with open_store(db_url) as store:
        store.upsert_sweep("kept", {"x": 1})
    with open_store(db_url) as store:
        assert store.sweep("kept")["spec"] == {"x": 1}


def test_password_hidden_in_errors():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreError) as caught:
        open_store(f"postgresql+psycopg://scalelab:s3cret@127.0.0.1:{port}/scalelab")
    assert "s3cret" not in str(caught.value)
    assert "scalelab:***@127.0.0.1" in str(caught.value)


def test_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not a database, just text " * 100)
    with pytest.raises(StoreError, match=r"cannot open database .*notes.db.*: file is not a database"):
        open_store(f"sqlite:///{path}")
