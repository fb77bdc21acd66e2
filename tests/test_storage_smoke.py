from sqlalchemy import text

from smartrealm.storage import make_engine


def test_engine_roundtrip_on_every_backend(sql_url: str) -> None:
    engine = make_engine(sql_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (41)"))
        assert conn.execute(text("SELECT x + 1 FROM t")).scalar_one() == 42
    engine.dispose()
