from sqlalchemy import text

from smartrealm.storage import make_engine


def test_engine_roundtrip_on_every_backend(sql_url: str) -> None:
    engine = make_engine(sql_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (41)"))
        assert conn.execute(text("SELECT x + 1 FROM t")).scalar_one() == 42
    engine.dispose()


def test_components_get_separate_schemas_on_postgres(pg_url: str) -> None:
    a = make_engine(pg_url + "?smartrealm_schema=ehr")
    b = make_engine(pg_url + "?smartrealm_schema=imaging")
    for engine, value in ((a, 1), (b, 2)):
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE resources (x INTEGER)"))
            conn.execute(text("INSERT INTO resources VALUES (:v)"), {"v": value})
    with a.connect() as conn:
        assert conn.execute(text("SELECT x FROM resources")).scalars().all() == [1]
    with b.connect() as conn:
        assert conn.execute(text("SELECT x FROM resources")).scalars().all() == [2]
    a.dispose()
    b.dispose()
