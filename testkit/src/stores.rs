//! The three stores a store test runs on: the in-memory store, the embedded store's
//! SQLite database (in a fresh file), and DynamoDB on the server the test command starts
//! (`scripts/test.sh`: moto on a free port).

use std::path::PathBuf;
use std::sync::Arc;

use shared::store::{DynamoDbStore, SqliteStore};

/// Runs each named `async fn(Arc<dyn Store>)` as three tests: on the in-memory store
/// (`memory::name`), on SQLite (`sqlite::name`, a fresh database file) and on DynamoDB
/// (`dynamodb::name`, on a fresh table of the server the test command started). The
/// calling crate needs `tokio` and `shared`.
#[macro_export]
macro_rules! each_store {
    ($($case:ident),* $(,)?) => {
        $crate::each_embedded_store!($($case),*);
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    if let Some(store) = $crate::stores::dynamodb().await {
                        super::$case(store).await;
                    }
                }
            )*
        }
    };
}

/// [`each_store!`] without DynamoDB: the embedded stores only (the in-memory store and
/// SQLite), for what only they do (the webhook outbox).
#[macro_export]
macro_rules! each_embedded_store {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(std::sync::Arc::new(shared::store::MemoryStore::new())).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let file = $crate::stores::TempDatabase::new();
                    super::$case(file.open()).await;
                }
            )*
        }
    };
}

/// The DynamoDB-compatible endpoint the test command started. Without one the DynamoDB
/// tests fail when `REQUIRE_DYNAMODB` (set by `scripts/test.sh`) or `CI` is set, and
/// otherwise say loudly that they were skipped.
pub fn dynamodb_endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("REQUIRE_DYNAMODB").is_some() || std::env::var_os("CI").is_some() => {
            panic!(
                "AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with `bash scripts/test.sh`"
            )
        }
        _ => {
            eprintln!("SKIPPED: no DynamoDB endpoint (run `bash scripts/test.sh` to start one)");
            None
        }
    }
}

/// A DynamoDB store on a fresh table of its own, so tests never see each other's items.
pub async fn dynamodb() -> Option<Arc<DynamoDbStore>> {
    let endpoint = dynamodb_endpoint()?;
    let table = shared::ids::new_id("test");
    let store = DynamoDbStore::new(table, Some(endpoint)).await;
    store.ensure_table().await.expect("create the test table");
    Some(Arc::new(store))
}

/// A SQLite database file in a directory of its own, removed when dropped.
pub struct TempDatabase {
    dir: PathBuf,
}

impl Default for TempDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl TempDatabase {
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(shared::ids::new_id("sqlite"));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        Self { dir }
    }

    /// The database's path (created by the first open).
    pub fn path(&self) -> PathBuf {
        self.dir.join("store.sqlite3")
    }

    /// Opens a store on the database (each call a new store, as another process would).
    pub fn open(&self) -> Arc<SqliteStore> {
        Arc::new(SqliteStore::open(&self.path()).expect("open the database"))
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every delivery an embedded store's outbox hands out at `now`, each marked delivered
/// once taken, until none is due; empty on a store without an outbox (DynamoDB).
pub async fn drain_outbox(
    store: &dyn shared::store::Store,
    now: i64,
) -> Vec<shared::store::Delivery> {
    let Some(outbox) = store.outbox() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    loop {
        let due = outbox.due_deliveries(now, now + 60_000, 100).await.unwrap();
        if due.is_empty() {
            return out;
        }
        for d in due {
            outbox.delivered(d.id).await.unwrap();
            out.push(d);
        }
    }
}

/// Fault injection for the DynamoDB store: the answers of the next `n` write calls
/// (`PutItem`, `UpdateItem`, `DeleteItem`, `TransactWriteItems`) are lost after DynamoDB
/// applied them, as when a connection drops or an attempt times out on the way back. The
/// SDK then retries the same call, which must recognise its own write.
#[derive(Clone, Debug, Default)]
pub struct LostAnswers {
    left: Arc<std::sync::atomic::AtomicUsize>,
    lost: Arc<std::sync::atomic::AtomicUsize>,
}

impl LostAnswers {
    pub fn lose_next(&self, n: usize) {
        self.left.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many answers were lost so far.
    pub fn lost(&self) -> usize {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for LostAnswers {
    fn name(&self) -> &'static str {
        "LostAnswers"
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextMut<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use std::sync::atomic::Ordering;
        let write = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .is_some_and(|m| {
                matches!(
                    m.name(),
                    "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems"
                )
            });
        let Some(result) = context.output_or_error_mut() else {
            return Ok(());
        };
        if !write || result.is_err() {
            return Ok(());
        }
        let take = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if take {
            self.lost.fetch_add(1, Ordering::SeqCst);
            *result = Err(
                aws_smithy_runtime_api::client::orchestrator::OrchestratorError::timeout(
                    "the answer was lost after the write was applied".into(),
                ),
            );
        }
        Ok(())
    }
}

/// A store on the test command's DynamoDB whose write answers can be lost on demand.
pub async fn dynamodb_losing_answers() -> Option<(Arc<DynamoDbStore>, LostAnswers)> {
    let endpoint = dynamodb_endpoint()?;
    let lost = LostAnswers::default();
    let store = DynamoDbStore::with_interceptor(
        shared::ids::new_id("test"),
        Some(endpoint),
        Some(aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(lost.clone())),
    )
    .await;
    store.ensure_table().await.expect("create the test table");
    Some((Arc::new(store), lost))
}
