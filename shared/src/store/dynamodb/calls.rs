//! Counts the DynamoDB operations a store makes, by name, and the capacity units they are
//! billed: an SDK interceptor that runs once per operation (not per retry). Tests hold each
//! endpoint to its documented count, and the cost model in BENCHMARKS.md reads it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Operations by name, and the on-demand request units they cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Calls {
    /// Operations by name; the items of transactions also by their action, as
    /// `TransactWriteItems/Put` (IAM authorises each item by its own action).
    pub operations: BTreeMap<String, u32>,
    /// Read request units: one per strongly consistent read of up to 4 KB.
    pub read_units: u32,
    /// Write request units: one per write of up to 1 KB, two per item in a transaction.
    pub write_units: u32,
}

impl Calls {
    /// The units of one operation, for items within the sizes the table keeps to (every
    /// item up to 1 KB, a client's partition up to 4 KB: checked by
    /// `shared/tests/suite/dynamodb_calls.rs`, since only the item sizes could change these).
    fn record(&mut self, operation: &str, batch_keys: usize, transaction_items: &[&str]) {
        *self.operations.entry(operation.to_string()).or_default() += 1;
        for action in transaction_items {
            *self
                .operations
                .entry(format!("{operation}/{action}"))
                .or_default() += 1;
        }
        match operation {
            "GetItem" | "Query" | "Scan" => self.read_units += 1,
            "BatchGetItem" => self.read_units += batch_keys as u32,
            "PutItem" | "UpdateItem" | "DeleteItem" => self.write_units += 1,
            "TransactWriteItems" => self.write_units += 2 * transaction_items.len() as u32,
            _ => {}
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct CallCounter(Arc<Mutex<Calls>>);

impl CallCounter {
    /// The calls so far, and a fresh start.
    pub fn take(&self) -> Calls {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    // Before serialization, not before execution: client interceptors see the operation's
    // metadata only once its configuration is applied. It still runs once per operation.
    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(metadata) = cfg.load::<Metadata>() {
            let input = context.input();
            let batch_keys = input
                .downcast_ref::<BatchGetItemInput>()
                .and_then(|i| i.request_items.as_ref())
                .map_or(0, |tables| tables.values().map(|k| k.keys.len()).sum());
            let transaction_items: Vec<&str> = input
                .downcast_ref::<TransactWriteItemsInput>()
                .and_then(|i| i.transact_items.as_ref())
                .into_iter()
                .flatten()
                .map(|item| {
                    if item.put.is_some() {
                        "Put"
                    } else if item.update.is_some() {
                        "Update"
                    } else if item.delete.is_some() {
                        "Delete"
                    } else {
                        "ConditionCheck"
                    }
                })
                .collect();
            self.0.lock().unwrap_or_else(|p| p.into_inner()).record(
                metadata.name(),
                batch_keys,
                &transaction_items,
            );
        }
        Ok(())
    }
}
