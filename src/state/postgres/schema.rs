//! The tables drplan keeps in PostgreSQL, created and migrated by drplan itself. Each
//! migration runs once, in a transaction, under a transaction-level advisory lock so two
//! runners starting at once do not both apply it.

/// The schema versions, in order: version `i + 1` is `MIGRATIONS[i]`.
const MIGRATIONS: &[&str] = &[
    // 1: state, journal, artifacts, plan keys, lock holders.
    "CREATE TABLE drplan_state (
        plan text PRIMARY KEY,
        serial bigint NOT NULL,
        body text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
     );
     CREATE TABLE drplan_journal (
        plan text NOT NULL,
        run text NOT NULL,
        seq bigserial,
        record text NOT NULL,
        PRIMARY KEY (plan, run, seq)
     );
     CREATE TABLE drplan_artifacts (
        plan text NOT NULL,
        name text NOT NULL,
        bytes bytea NOT NULL,
        PRIMARY KEY (plan, name)
     );
     CREATE TABLE drplan_keys (
        plan text PRIMARY KEY,
        key bytea NOT NULL CHECK (length(key) = 32)
     );
     CREATE TABLE drplan_locks (
        plan text PRIMARY KEY,
        holder text NOT NULL,
        backend_pid integer NOT NULL
     );",
];

/// The version this drplan writes.
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// Serialises migrations across runners (a constant of drplan's own).
const MIGRATION_LOCK: i64 = 0x6472_706c_616e_0001;

/// Bring the database to `VERSION`. Refuses a database a newer drplan migrated.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<Result<(), i32>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS drplan_schema (version integer NOT NULL)").await?;
    let current: i32 = match tx.query_opt("SELECT version FROM drplan_schema", &[]).await? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO drplan_schema (version) VALUES (0)", &[]).await?;
            0
        }
    };
    if current > VERSION {
        return Ok(Err(current));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql).await?;
        tx.execute("UPDATE drplan_schema SET version = $1", &[&(i as i32 + 1)]).await?;
    }
    tx.commit().await?;
    Ok(Ok(()))
}
