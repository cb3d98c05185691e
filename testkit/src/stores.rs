//! The two stores a store test runs on: the embedded store in memory, and DynamoDB on the
//! server the test command starts (`scripts/test.sh`: moto on a free port).

use std::sync::Arc;

use shared::store::DynamoDbStore;

/// Runs each named `async fn(Arc<dyn Store>)` as two tests: on the embedded store
/// (`embedded::name`) and on DynamoDB (`dynamodb::name`, on a fresh table of the server the
/// test command started). The calling crate needs `tokio` and `shared`.
#[macro_export]
macro_rules! both_stores {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(std::sync::Arc::new(shared::store::EmbeddedStore::in_memory())).await;
                }
            )*
        }
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
